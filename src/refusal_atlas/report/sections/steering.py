"""The ``steering`` and ``ablation`` sections, and the dose-response pivot and trade-off gap
view that SAE steering shares with them."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..format import alpha_key, num
from .common import figure, named_count, pick, pick_rows, stage_artifact

__all__ = ["ablation_section", "alphas_view", "gap_view", "no_gap_reason", "pivot",
           "steering_section"]


def pivot(dose: Sequence[Mapping[str, Any]]) -> dict:
    """dose_response rows -> {alphas, rows: [{label, cells: {alpha: {rr, orr}}, top}]}."""
    dose = [r for r in dose if isinstance(r, Mapping) and num(r.get("alpha")) is not None]
    alphas = sorted({float(r["alpha"]) for r in dose})
    curves: OrderedDict[str, dict] = OrderedDict()
    for r in dose:
        c = curves.setdefault(r.get("label") or r.get("curve") or "?",
                              {"label": r.get("label") or r.get("curve"), "cells": {}})
        c["cells"][alpha_key(r["alpha"])] = {"rr": r.get("rr"), "orr": r.get("orr"),
                                             "accuracy": r.get("accuracy")}
    rows = []
    for c in curves.values():
        present = [a for a in alphas if alpha_key(a) in c["cells"]]
        top = c["cells"][alpha_key(max(present))] if present else {}
        zero = c["cells"].get(alpha_key(0.0), {})
        rrs = [num(v.get("rr")) for v in c["cells"].values() if num(v.get("rr")) is not None]
        rows.append({"label": c["label"], "cells": c["cells"],
                     "top_alpha": max(present) if present else None,
                     "top_rr": top.get("rr"), "top_orr": top.get("orr"),
                     "zero_rr": zero.get("rr"), "zero_orr": zero.get("orr"),
                     "rr_span": (max(rrs) - min(rrs)) if rrs else None})
    return {"alphas": alphas, "alpha_keys": [alpha_key(a) for a in alphas], "rows": rows}


def alphas_view(alphas: Any) -> dict:
    """A sweep's ``alphas`` record (explicit or auto-scaled) with every key the page shows."""
    view = pick(alphas, ("alphas", "mode", "paper_alphas", "scale", "mean_projection_gap",
                         "reference_gap", "vector_norm"))
    view["alphas"] = view["alphas"] if isinstance(view["alphas"], list) else []
    view["paper_alphas"] = view["paper_alphas"] if isinstance(view["paper_alphas"], list) else []
    return view


def gap_view(gap: Mapping[str, Any] | None) -> dict | None:
    """A ``tradeoff_gap`` artifact flattened for display (value, pair, CI, permutation p)."""
    if not gap:
        return None
    unc = gap.get("uncertainty") or {}
    boot = unc.get("bootstrap") or {}
    perm = unc.get("permutation") or {}
    return {"value": gap.get("value"), "pair": gap.get("pair"), "at_rr": gap.get("at_rr"),
            "overlap": gap.get("overlap"), "mean_over_pairs": gap.get("mean_over_pairs"),
            "n_curves": gap.get("n_curves"), "n_pairs": gap.get("n_pairs"),
            "pairs_without_overlap": gap.get("pairs_without_overlap") or [],
            "non_monotone": gap.get("non_monotone") or [],
            "ci95": boot.get("value_ci95"), "mean_ci95": boot.get("mean_over_pairs_ci95"),
            "n_boot": boot.get("n"), "p_value": perm.get("p_value"),
            "null_mean": perm.get("null_mean"), "null_95": perm.get("null_95"),
            "n_perm": perm.get("n"), "definition": gap.get("definition"),
            "uncertainty_definition": unc.get("definition")}


def no_gap_reason(gap: Mapping[str, Any] | None, table: Mapping[str, Any],
                  curves: str = "directions") -> str | None:
    """Why there is no trade-off gap (None when there is one): a gap compares two curves
    (``curves`` names them in the sentence) over overlapping RR ranges."""
    if gap and num(gap.get("value")) is not None:
        return None
    labels = [str(r.get("label")) for r in table.get("rows") or []]
    if not labels:
        return "no dose-response rows to compare"
    if len(labels) < 2:
        return f"a trade-off gap needs at least 2 {curves}; this run has {named_count(labels)}"
    if not gap:
        return "the metrics hold no trade-off gap"
    return "no two curves have overlapping RR ranges"


def steering_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """Unsteered RR/ORR, the RR/ORR table per direction and alpha, the trade-off gap.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    m, reason = stage_artifact(run_dir, states, "steering/metrics.json")
    if m is None:
        return {"available": False, "reason": reason}
    conds = m.get("conditions") or {}
    base = conds.get("baseline") or {}
    dose = m.get("dose_response") or []
    rpo = (m.get("rr_per_orr") or {}).get("curves") or {}
    sweep = m.get("sweep") or {}
    table = pivot(dose)
    gap = gap_view(m.get("tradeoff_gap"))
    return {
        "available": True, "judge": m.get("judge"), "judge_note": m.get("judge_note"),
        "alphas": alphas_view(m.get("alphas")), "n_rows": m.get("n_rows"),
        "baseline": {"rr": base.get("rr"), "orr": base.get("orr"),
                     "n_harmful": base.get("parsed_harmful"), "n_benign": base.get("parsed_benign")},
        "table": table, "n_directions": len(table["rows"]), "gap": gap,
        "gap_reason": no_gap_reason(gap, table),
        "rr_per_orr": [{"label": k, **pick(v, ("alpha", "d_rr", "d_orr", "rr_per_orr"))}
                       for k, v in rpo.items()],
        "parse_errors": sum(int(num(c.get("parse_errors")) or 0) for c in conds.values()
                            if isinstance(c, Mapping)),
        "generation_seconds": sweep.get("generation_seconds"),
        "figures": [f for f in (
            figure(run_dir, "steering/dose_response.png", "RR (solid) and ORR (dashed) against alpha"),
            figure(run_dir, "steering/tradeoff.png", "ORR against RR along each direction; the "
                                                    "largest gap is marked"),
        ) if f],
        "sources": ["steering/metrics.json", "steering/results.jsonl"],
    }


def ablation_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """RR and ORR after ablating each direction, and the baseline's.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    m, reason = stage_artifact(run_dir, states, "ablation/metrics.json")
    if m is None:
        return {"available": False, "reason": reason}
    base = (m.get("conditions") or {}).get("baseline") or {}
    return {
        "available": True, "judge": m.get("judge"),
        "rows": pick_rows(m.get("ablation"), ("direction", "rr", "orr", "d_rr", "d_orr",
                                              "accuracy", "parse_errors")),
        "baseline": {"rr": base.get("rr"), "orr": base.get("orr")},
        "figure": figure(run_dir, "ablation/ablation.png", "RR and ORR after ablating each direction"),
        "sources": ["ablation/metrics.json"],
    }
