"""The ``style`` section: refusal styles per direction and for the unsteered baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ...style import STYLES
from .common import figure, stage_artifact

__all__ = ["style_section"]


def style_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """Refusal styles per direction and for the unsteered baseline.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    s, reason = stage_artifact(run_dir, states, "style/summary.json")
    if s is None:
        return {"available": False, "reason": reason}

    def row(name: str, v: Any) -> dict:
        v = v if isinstance(v, Mapping) else {}
        return {"name": name, "n": v.get("n"), "n_refusals": v.get("n_refusals"),
                "dominant": v.get("dominant"), "purity": v.get("purity"),
                "tied": v.get("tied") or [],
                "counts": v.get("counts") if isinstance(v.get("counts"), Mapping) else {}}

    rows = [row(k, v) for k, v in (s.get("by_direction") or {}).items()]
    base = s.get("baseline")
    n_steered = s.get("n_steered_refusals")
    empty = None
    if not rows or n_steered == 0:
        # a sweep whose steering made no response a refusal leaves nothing to classify
        empty = ("no steered refusals to classify: no steered condition (alpha > 0) made the "
                 "judge call a response a refusal")
    return {
        "available": True, "classifier": s.get("classifier"),
        "n_steered_refusals": n_steered, "styles": list(STYLES),
        "rows": rows, "empty_reason": empty,
        "baseline": row("baseline (unsteered)", base) if base else None,
        "figure": figure(run_dir, "style/styles.png", "share of each refusal style per direction"),
        "sources": ["style/summary.json", "style/styles.jsonl"],
    }
