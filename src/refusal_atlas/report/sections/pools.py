"""The ``pools`` section: HR/HC/BR/BC counts per pool, the judge and the test set."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .common import group_sizes, not_run, pick_rows, read_json_or_none

__all__ = ["pools_section"]

POOL_COLUMNS = ("name", "kind", "benign_pool", "source", "not_labelled", "HR", "HC", "BR", "BC",
                "train_hr", "train_bc", "test")


def pools_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """HR/HC/BR/BC per pool, the labelling judge, the test set and pool warnings.

    With lazy labelling (``labels.label_all`` false) the counts are of the labelled prompts
    only; each row says how many of its prompts were not labelled.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    reason = not_run(states, "labels", "pools", "test_set")
    if reason:
        return {"available": False, "reason": reason}
    rows = read_json_or_none(run_dir / "test_set" / "pool_report.json") or []
    counts = read_json_or_none(run_dir / "labels" / "counts.json") or {}
    test_set = read_json_or_none(run_dir / "test_set" / "test_set.json") or {}
    done = (states.get("pools") or {}).get("summary") or {}
    return {
        "available": True, "rows": pick_rows(rows, POOL_COLUMNS),
        "judge": counts.get("judge"), "approximate": counts.get("approximate_judge"),
        "parse_errors": counts.get("judge_parse_errors"),
        # runs from before lazy labelling labelled every prompt
        "label_all": counts.get("label_all", True),
        "n_labelled": counts.get("n_labelled", counts.get("n_prompts")),
        "n_not_labelled": counts.get("n_not_labelled", 0),
        "test_set": group_sizes(test_set),
        "test_seed": test_set.get("seed"),
        "splits_with_direction": done.get("splits_with_direction"),
        "warnings": done.get("warnings") or [],
        "sources": ["test_set/pool_report.json", "labels/counts.json", "test_set/test_set.json",
                    "pools/_done.json"],
    }
