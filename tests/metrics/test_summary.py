"""Tests for refusal_atlas.metrics.summary: metrics.json and its compact form."""

import json

import pytest

from refusal_atlas.metrics.summary import compact_summary, summarise

from .conftest import BASE, condition_rows, curve_rows


def test_ablation_table_and_summary():
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += condition_rows("ablate/A", "ablate", "A", None,
                           [("HR", False), ("HR", True), ("HC", False), ("HC", False),
                            ("BR", False), ("BC", False), ("BC", False), ("BC", False)])
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    s = summarise(rows, judge="substring", approximate=True,
                  alphas={"mode": "explicit", "alphas": [10.0, 30.0]})
    (abl,) = s["ablation"]
    assert abl["rr"] == 0.25 and abl["d_rr"] == pytest.approx(-0.25)
    assert abl["orr"] == 0.0 and abl["d_orr"] == pytest.approx(-0.25)
    assert s["judge_approximate"] and "approximates" in s["judge_note"]
    json.dumps(s)
    compact = compact_summary(s)
    assert compact["tradeoff_gap"]["pair"] == ["A", "B"]
