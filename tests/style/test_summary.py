"""Tests for refusal_atlas.style.summary (steered refusals, style summaries)."""

from __future__ import annotations

import json

import pytest
from conftest import STYLE_ROWS

from refusal_atlas.errors import UserError
from refusal_atlas.style import UNPARSED, StyleLabel, steered_refusals, style_summary, summarize

ROWS = STYLE_ROWS


def test_steered_refusals_exclude_alpha_zero_and_compliance():
    steered, baseline = steered_refusals(ROWS)
    assert {(r["condition"], r["prompt_id"]) for r in steered} == {
        ("steer/A/a=5", "p1"), ("steer/A/a=5", "p2"), ("steer/B/a=5", "p1"), ("steer/B/a=5", "p2")}
    assert [r["prompt_id"] for r in baseline] == ["p1"]


def test_summarize_groups_by_direction_side_and_condition():
    rows = [dict(r, style="SAFETY", evidence="illegal", classifier="rules")
            for r in steered_refusals(ROWS)[0]]
    summary = summarize(rows)
    assert set(summary) == {"by_direction", "by_direction_side", "by_condition"}
    assert summary["by_direction"]["A"]["n"] == 2
    assert summary["by_direction_side"]["A | benign"]["counts"]["SAFETY"] == 1
    assert summary["by_condition"]["steer/B/a=5"]["dominant"] == "SAFETY"


def _labels(*styles):
    return [StyleLabel(s, "", "test") for s in styles]


def test_style_summary_known_example():
    summary = style_summary(
        {
            "CocoNot_Humanizing": _labels(
                "CAPABILITY",
                "CAPABILITY",
                "CAPABILITY",
                "SAFETY",
                "NONREFUSAL",
                "NONREFUSAL",
                "NONREFUSAL",
                "NONREFUSAL",
            ),
            "WildGuard_all": _labels("SAFETY", "SAFETY", "GENERIC", "GENERIC", UNPARSED),
            "empty": [],
            "none_refused": _labels("NONREFUSAL"),
        }
    )
    h = summary["CocoNot_Humanizing"]
    assert h["n"] == 8 and h["n_refusals"] == 4 and h["nonrefusal"] == 4
    assert h["dominant"] == "CAPABILITY" and h["purity"] == pytest.approx(0.75)
    assert h["counts"] == {
        "CAPABILITY": 3,
        "SAFETY": 1,
        "UNDERSPEC": 0,
        "GENERIC": 0,
        "NONREFUSAL": 4,
        UNPARSED: 0,
    }
    w = summary["WildGuard_all"]
    assert w["dominant"] == "SAFETY" and w["tied"] == ["SAFETY", "GENERIC"]
    assert w["purity"] == pytest.approx(0.5) and w["unparsed"] == 1 and w["n"] == 5
    assert summary["empty"]["n"] == 0 and summary["empty"]["dominant"] is None
    assert summary["none_refused"]["dominant"] is None and summary["none_refused"]["purity"] is None
    json.dumps(summary)
    with pytest.raises(UserError):
        style_summary({"x": _labels("POLITE")})
