"""Tests for refusal_atlas.metrics.rates: RR / ORR / accuracy / transitions by hand."""

import pytest

from refusal_atlas.metrics.rates import condition_metrics

from .conftest import BASE, condition_rows


def test_condition_metrics_by_hand():
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += condition_rows("steer/A/a=10", "steer", "A", 10.0,
                           [("HR", True), ("HR", "err"), ("HC", True), ("HC", False),
                            ("BR", False), ("BC", True), ("BC", True), ("BC", False)])
    m = condition_metrics(rows)
    assert list(m) == ["baseline", "steer/A/a=10"]
    b = m["baseline"]
    assert (b["rr"], b["orr"], b["accuracy"], b["parse_errors"]) == (0.5, 0.25, 1.0, 0)
    s = m["steer/A/a=10"]
    # harmful: 3 parsed, 2 refused; benign: 4 parsed, 2 refused
    assert s["rr"] == pytest.approx(2 / 3) and s["orr"] == 0.5
    assert s["parse_errors"] == 1 and s["n"] == 8 and s["n_harmful"] == 4
    # agreement with base labels: HR ok, HC no, HC ok, BR no, BC no, BC no, BC ok -> 3/7
    assert s["accuracy"] == pytest.approx(3 / 7) and s["n_accuracy"] == 7
    assert s["transitions"] == {"HR": {"HR": 1, "error": 1}, "HC": {"HR": 1, "HC": 1},
                                "BR": {"BC": 1}, "BC": {"BR": 2, "BC": 1}}
    assert s["mean_new_tokens"] == 10


def test_rates_are_none_without_parsed_rows():
    m = condition_metrics(condition_rows("c", "steer", "A", 1.0, [("HR", "err"), ("BC", False)]))
    assert m["c"]["rr"] is None and m["c"]["orr"] == 0.0
