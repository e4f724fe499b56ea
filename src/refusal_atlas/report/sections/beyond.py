"""The ``beyond`` section ("Beyond the paper"): every finding the beyond-the-paper stages
wrote (``<stage>/findings.json``), in pipeline order; a stage that did not run is listed as
"not run", never an error."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ...beyond.findings import FINDINGS_FILE, read_findings
from .common import not_run

__all__ = ["BEYOND_STAGES", "beyond_section"]

BEYOND_STAGES = ("style_vs_rate", "subspace", "tail_latents", "layer_robustness", "cosmic")
"""The beyond-the-paper stages, in pipeline order (issue 14's experiments 1, 2, 3, 4, 5)."""

TITLES = {
    "style_vs_rate": "Style vs rate: does the category-specific part change how, not how often?",
    "subspace": "Refusal subspace: one direction or a low-dimensional span?",
    "tail_latents": "Tail latents: style or rate?",
    "layer_robustness": "Layer robustness: does the geometry hold at nearby layers?",
    "cosmic": "Output-free selection (COSMIC): same layer and direction without generating?",
}

FINDING_KEYS = ("experiment", "subject", "question", "measured", "criterion", "verdict",
                "supported")


def beyond_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """One entry per beyond-the-paper stage: its findings, or why there are none.

    Args:
        run_dir: the run folder.
        states: each stage's state (a stage that is not done is "not run: ...").

    Example:
        >>> sec = beyond_section(Path("/nonexistent"), {})
        >>> sec["available"], [s["stage"] for s in sec["stages"]][:2]
        (False, ['style_vs_rate', 'subspace'])
    """
    stages = []
    for name in BEYOND_STAGES:
        reason = not_run(states, name)
        found = None if reason else read_findings(run_dir / name)
        if reason is None and found is None:
            reason = f"not run: {name}/{FINDINGS_FILE} missing"
        rows = [{k: getattr(f, k) for k in FINDING_KEYS} for f in found or []]
        stages.append({"stage": name, "title": TITLES[name], "available": reason is None,
                       "reason": reason, "findings": rows,
                       "source": f"{name}/{FINDINGS_FILE}"})
    available = any(s["available"] for s in stages)
    return {"available": available, "stages": stages,
            "reason": None if available else
            "not run: no beyond-the-paper stage has run (beyond.enabled = false; "
            "`refusal-atlas run --preset beyond` turns them on)"}
