"""Arditi et al.'s refusal_direction splits (shared data)."""

from __future__ import annotations

from collections import Counter

from refusal_atlas.data.sources.refusal_direction import load_refusal_direction

from ..fakes import SHARED, needs_shared

REFUSAL_DIRECTION = {"harmful_train": 260, "harmful_val": 39, "harmful_test": 572,
                     "harmless_train": 18793, "harmless_val": 6264, "harmless_test": 6266}


@needs_shared
def test_refusal_direction_counts():
    prompts = load_refusal_direction(SHARED / "refusal_direction")
    assert Counter(p.split for p in prompts) == REFUSAL_DIRECTION
    assert all(p.harmful == p.split.startswith("harmful") for p in prompts)
    has_cat = {s for s in REFUSAL_DIRECTION if any(p.meta["category"] for p in prompts
                                                    if p.split == s)}
    assert has_cat == {"harmful_val", "harmful_test"}
    one = load_refusal_direction(SHARED / "refusal_direction" / "harmful_val.json")
    assert len(one) == 39 and one[0].id == "refusal_direction/harmful_val/0"
