"""Tests for refusal_atlas.judges.base."""

from __future__ import annotations

from refusal_atlas.judges import Judge, SubstringJudge, WildGuardJudge


def test_protocol():
    assert isinstance(SubstringJudge(), Judge)
    assert isinstance(WildGuardJudge(), Judge)
    assert SubstringJudge.approximate is True and WildGuardJudge.approximate is False

