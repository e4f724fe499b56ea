"""The prompt data model: suites check their pairing, and assemble_suite orders and checks."""

from __future__ import annotations

import pytest

from refusal_atlas.data.prompts import Prompt, PromptSuite, assemble_suite, with_split
from refusal_atlas.errors import UserError


def _p(pid: str, split: str, harmful: bool) -> Prompt:
    return Prompt(pid, f"text of {pid}", split, harmful)


def test_suite_checks_pairing_and_ids():
    h, b = _p("h", "A", True), _p("b", "ben", False)
    with pytest.raises(ValueError, match="unknown benign pool"):
        PromptSuite("s", {"A": [h]}, {"ben": [b]}, {"A": "other"})
    with pytest.raises(ValueError, match="without a benign pool"):
        PromptSuite("s", {"A": [h]}, {"ben": [b]}, {})
    with pytest.raises(ValueError, match="used by two different prompts"):
        PromptSuite("s", {"A": [h]}, {"ben": [_p("h", "ben", False)]}, {"A": "ben"})


def test_assemble_suite_orders_paper_splits_first():
    harmful = [_p("z", "Zeta", True), _p("x", "XSTest_all", True), _p("w", "WildGuard_all", True)]
    benign = with_split([_p("b", "anything", False)], "ben")
    suite = assemble_suite("s", harmful, benign, lambda s: "ben")
    assert list(suite.splits) == ["WildGuard_all", "XSTest_all", "Zeta"]
    assert suite.benign["ben"][0].split == "ben"
    with pytest.raises(UserError, match="needs benign pool 'other'"):
        assemble_suite("s", harmful, benign, {"Zeta": "other", "XSTest_all": "ben",
                                              "WildGuard_all": "ben"})
    with pytest.raises(UserError, match="has no non-compliant prompts"):
        assemble_suite("s", [], benign, lambda s: "ben")
