"""Tests for refusal_atlas.metrics.uncertainty: bootstrap CI and permutation p-value."""

from refusal_atlas.metrics.summary import compact_summary, summarise
from refusal_atlas.metrics.uncertainty import gap_uncertainty

from .conftest import paired_rows


def test_gap_uncertainty():
    same = {"A": {10: (0.8, 0.5)}, "B": {10: (0.8, 0.5)}}
    rows = paired_rows(same)
    # make B's verdicts exactly A's: identical curves -> gap 0, every null gap >= 0
    a_rows = {(r["prompt_id"], r["alpha"]): r["refused"] for r in rows if r["direction"] == "A"}
    for r in rows:
        if r["direction"] == "B":
            r["refused"] = a_rows[(r["prompt_id"], r["alpha"])]
    u = gap_uncertainty(rows, n_boot=200, n_perm=200)
    assert u["observed"] == 0.0 and u["bootstrap"]["value_ci95"] == [0.0, 0.0]
    assert u["permutation"]["p_value"] == 1.0
    assert gap_uncertainty(rows, n_boot=50, n_perm=50, seed=3) == \
        gap_uncertainty(rows, n_boot=50, n_perm=50, seed=3)
    # very different knobs: B buys much more ORR for the same RR
    far = paired_rows({"A": {10: (0.9, 0.3), 30: (1.0, 0.3)},
                       "B": {10: (0.9, 1.0), 30: (1.0, 1.0)}}, n=40)
    u = gap_uncertainty(far, n_boot=200, n_perm=200)
    assert u["observed"] > 0.5 and u["permutation"]["p_value"] < 0.05
    lo, hi = u["bootstrap"]["value_ci95"]
    assert lo <= u["observed"] <= hi
    s = summarise(far, judge="x", approximate=False, uncertainty={"n_boot": 20, "n_perm": 20})
    assert s["tradeoff_gap"]["uncertainty"]["permutation"]["n"] == 20
    assert "ci95" in compact_summary(s)["tradeoff_gap"]
