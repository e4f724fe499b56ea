"""Tests for refusal_atlas.metrics.summary: metrics.json and its compact form."""

import json

import pytest

from refusal_atlas.metrics.summary import compact_summary

from .conftest import ablation_and_two_curves


def test_ablation_table_and_summary():
    rows, s = ablation_and_two_curves()
    (abl,) = s["ablation"]
    assert abl["rr"] == 0.25 and abl["d_rr"] == pytest.approx(-0.25)
    assert abl["orr"] == 0.0 and abl["d_orr"] == pytest.approx(-0.25)
    assert s["judge_approximate"] and "approximates" in s["judge_note"]
    json.dumps(s)
    compact = compact_summary(s)
    assert compact["tradeoff_gap"]["pair"] == ["A", "B"]
