"""Tests for refusal_atlas.judges.agreement."""

from __future__ import annotations

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.judges import Judgement, judge_agreement


def _j(values, name):
    return [Judgement(refused=v, raw="", judge=name, parse_error=v is None) for v in values]


def test_agreement_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    a = [True, True, False, False, True, False, True, None, False, True]
    b = [True, False, False, False, True, True, True, True, None, True]
    res = judge_agreement(_j(a, "wildguard"), _j(b, "substring"))
    keep = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
    assert (
        res["n_rows"] == 10
        and res["n"] == 8
        and res["excluded"] == 2
        and res["excluded_rows"] == [7, 8]
    )
    assert res["confusion"] == {"both_refused": 4, "a_only": 1, "b_only": 1, "neither": 2}
    assert res["agreement"] == pytest.approx(6 / 8)
    expected = cohen_kappa_score([a[i] for i in keep], [b[i] for i in keep])
    assert res["kappa"] == pytest.approx(expected)
    assert res["parse_errors_a"] == 1 and res["parse_errors_b"] == 1
    assert res["judge_a"] == ["wildguard"] and res["judge_b"] == ["substring"]


def test_agreement_degenerate_cases():
    same = judge_agreement(_j([True, True], "a"), _j([True, True], "b"))
    assert same["agreement"] == 1.0 and same["kappa"] is None
    empty = judge_agreement(_j([None], "a"), _j([True], "b"))
    assert empty["n"] == 0 and empty["agreement"] is None and empty["kappa"] is None
    with pytest.raises(UserError):
        judge_agreement(_j([True], "a"), _j([True, False], "b"))

