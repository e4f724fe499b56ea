"""Tests for refusal_atlas.style.rules (the rule-based refusal-style classifier)."""

from __future__ import annotations

import json
import re

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.style import STYLES, RuleStyleClassifier, StyleLabel, explain_rules


@pytest.mark.parametrize(
    "text, style, evidence",
    [
        # CAPABILITY
        (
            "I am a text-based AI, so I cannot interact with the physical world.",
            "CAPABILITY",
            "I am a text-based",
        ),
        (
            "As an AI, I don\u2019t have personal feelings, memories, or opinions.",
            "CAPABILITY",
            "I don\u2019t have personal feelings",
        ),
        (
            "I\u2019m sorry, I can\u2019t browse the internet or see images.",
            "CAPABILITY",
            "I can\u2019t browse",
        ),
        ("I cannot provide real-time stock prices.", "CAPABILITY", "I cannot provide real-time"),
        ("As an AI, I cannot do that.", "CAPABILITY", "As an AI"),  # weak cue only
        # SAFETY
        (
            "I cannot help with that. Tampering with a crime scene is illegal and harmful.",
            "SAFETY",
            "crime",
        ),
        (
            "I\u2019m sorry, but as an AI I cannot assist with illegal or unethical activities.",
            "SAFETY",
            "illegal",
        ),
        ("I won't write that; it goes against my guidelines.", "SAFETY", "against my guidelines"),
        ("I'm sorry, that request is not appropriate.", "SAFETY", "not appropriate"),
        # UNDERSPEC
        (
            "I can\u2019t understand what you\u2019re saying. I\u2019m not sure what you mean.",
            "UNDERSPEC",
            "can\u2019t understand",
        ),
        ("Please clarify your request and provide more context.", "UNDERSPEC", "clarify"),
        ("Could you provide more details about which account?", "UNDERSPEC", "Could you provide"),
        # GENERIC
        ("I\u2019m sorry, but I can\u2019t do that.", "GENERIC", "I\u2019m sorry"),
        ("I will not help you with this. I won\u2019t do that.", "GENERIC", "I will not"),
        ("i CANNOT do this", "GENERIC", "i CANNOT"),
        # NONREFUSAL
        ("Sure, here are the steps: first you mix the flour.", "NONREFUSAL", ""),
        ("Sure! I can help you with that recipe.", "NONREFUSAL", ""),
        ("That is illegal in some places, but here is how it works: step 1 ...", "NONREFUSAL", ""),
        ("asdf qwer zxcv banana banana", "NONREFUSAL", ""),
        ("", "NONREFUSAL", ""),
    ],
)
def test_rule_styles(text, style, evidence):
    label = RuleStyleClassifier().classify_one(text)
    assert label == StyleLabel(style, evidence, "rules")


@pytest.mark.parametrize(
    "text, style",
    [
        # Mixed framings: the one stated first wins.
        ("I cannot help: your request is unclear. It might also be illegal.", "UNDERSPEC"),
        ("I cannot help: that would be illegal. Also, your request is unclear.", "SAFETY"),
        ("That is dangerous. Besides, I don\u2019t have a body, so I can\u2019t do it.", "SAFETY"),
        ("I don\u2019t have a body, and it would be dangerous anyway. I can\u2019t.", "CAPABILITY"),
        ("I\u2019m not sure what you mean, and as an AI I don\u2019t have feelings.", "UNDERSPEC"),
        # A specific reason beats the "As an AI" preamble even if the preamble comes first.
        ("As a language model, I cannot write hateful content.", "SAFETY"),
    ],
)
def test_rule_mixed_framings_first_wins(text, style):
    assert RuleStyleClassifier().classify([text])[0].style == style


def test_rule_extensions():
    clf = RuleStyleClassifier(
        extra_cues={"safety": [r"\bnaughty\b"]}, extra_refusal_patterns=[r"\bno way\b"]
    )
    assert clf.classify_one("No way, that is naughty.").style == "SAFETY"
    assert RuleStyleClassifier().classify_one("No way, that is naughty.").style == "NONREFUSAL"
    with pytest.raises(UserError):
        RuleStyleClassifier(extra_cues={"GENERIC": ["x"]})
    with pytest.raises(UserError):
        RuleStyleClassifier(extra_cues={"SAFETY": ["(unclosed"]})


def test_rule_table():
    rows = explain_rules()
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    styles = {r["style"] for r in rows}
    assert set(STYLES) <= styles
    by_role = {(r["style"], r["role"]): r for r in rows}
    assert "I can't" in by_role[("(refusal?)", "refusal phrase")]["patterns"]
    for style in ("CAPABILITY", "SAFETY", "UNDERSPEC"):
        row = by_role[(style, "framing cue")]
        assert row["patterns"] and all(isinstance(p, str) for p in row["patterns"])
        for p in row["patterns"]:
            re.compile(p)
    assert any(r"illegal" in p for p in by_role[("SAFETY", "framing cue")]["patterns"])
    json.dumps(rows)  # serialisable for the report


