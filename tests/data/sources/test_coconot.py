"""CoCoNot: the shared copy's counts and the category names."""

from __future__ import annotations

from collections import Counter

import pytest

from refusal_atlas.data.sources.coconot import (
    coconot_split_name,
    load_coconot,
    load_coconot_contrast,
)
from refusal_atlas.data.splits import BENIGN_COCONOT_CONTRAST
from refusal_atlas.errors import UserError

from ..fakes import SHARED, needs_shared

COCONOT_EVAL = {"CocoNot_Safety": 395, "CocoNot_Incomplete": 225, "CocoNot_Unsupported": 157,
                "CocoNot_Indeterminate": 142, "CocoNot_Humanizing": 82}
COCONOT_CONTRAST = {"CocoNot_Safety": 149, "CocoNot_Incomplete": 148, "CocoNot_Unsupported": 82}


@needs_shared
def test_coconot_eval_and_contrast():
    orig = load_coconot(SHARED / "coconot")
    assert len(orig) == 1001 and all(p.harmful for p in orig)
    assert Counter(p.split for p in orig) == COCONOT_EVAL
    assert len({p.id for p in orig}) == 1001
    assert orig[0].id == "coconot/original/bajp42a"
    contrast = load_coconot_contrast(SHARED / "coconot")
    assert len(contrast) == 379 and not any(p.harmful for p in contrast)
    assert {p.split for p in contrast} == {BENIGN_COCONOT_CONTRAST}
    assert Counter(p.meta["coconot_split"] for p in contrast) == COCONOT_CONTRAST
    # the file itself, named directly
    assert len(load_coconot(SHARED / "coconot" / "coconot_eval.jsonl")) == 1001



def test_coconot_category_names():
    assert coconot_split_name("Requests with safety concerns") == "CocoNot_Safety"
    assert coconot_split_name("safety") == "CocoNot_Safety"
    assert coconot_split_name("incomplete") == "CocoNot_Incomplete"
    assert coconot_split_name("Humanizing requests") == "CocoNot_Humanizing"
    assert coconot_split_name("CocoNot_Unsupported") == "CocoNot_Unsupported"
    assert coconot_split_name(" Indeterminate requests ") == "CocoNot_Indeterminate"
    with pytest.raises(UserError, match="unknown CoCoNot category"):
        coconot_split_name("weird")
