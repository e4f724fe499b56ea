"""One model's part of the atlas, read from its run folder's artifacts through the report's
section builders (so a number means the same in ``report.html`` and ``compare.html``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from ..report.build import _guard  # the report's own guard: one bad artifact, one note
from ..report.format import num
from ..report.sections.common import read_json_or_none
from ..report.sections.geometry import geometry_section
from ..report.sections.layer_scan import layer_scan_section
from ..report.sections.sae import sae_section
from ..report.sections.steering import steering_section
from ..report.sections.summary import summary_section

__all__ = ["load_model_run", "model_label"]


def model_label(model_name: str | None, run_dir: Path) -> str:
    """A short name for a model: the last part of its name or path (dots kept:
    ``qwen2.5-coder-0.5b-instruct``), else the run folder's name."""
    if not model_name:
        return run_dir.name
    return Path(str(model_name).rstrip("/")).name or str(model_name)


def _geometry(sec: Mapping[str, Any]) -> dict:
    if not sec.get("available"):
        return {"available": False, "reason": sec.get("reason"), "names": [], "cosine": []}
    best_k = sec.get("best_k")
    s = sec.get("summary") or {}
    return {"available": True, "names": sec.get("names") or [], "cosine": sec.get("cosine") or [],
            "best_k": best_k, "best_silhouette": s.get("best_silhouette"),
            "clusters": (sec.get("clusters_by_k") or {}).get(str(best_k)) or [],
            "clusters_k2": (sec.get("clusters_by_k") or {}).get("2") or [],
            "clustering_reason": sec.get("clustering_reason"),
            "mean_offdiag": s.get("mean_offdiag_cosine"), "min_offdiag": s.get("min_offdiag_cosine"),
            "max_offdiag": s.get("max_offdiag_cosine"), "min_pair": s.get("min_pair") or [],
            "max_pair": s.get("max_pair") or []}


def _steering(sec: Mapping[str, Any]) -> dict:
    if not sec.get("available"):
        return {"available": False, "reason": sec.get("reason"), "table": {"rows": []}}
    g = sec.get("gap") or {}
    return {"available": True, "judge": sec.get("judge"), "baseline": sec.get("baseline") or {},
            "table": sec.get("table") or {"rows": []}, "alphas_mode": (sec.get("alphas") or {}).get("mode"),
            "gap": g.get("value"), "gap_pair": g.get("pair") or [], "gap_at_rr": g.get("at_rr"),
            "gap_ci95": g.get("ci95"), "gap_p": g.get("p_value"),
            "gap_mean": g.get("mean_over_pairs"), "gap_reason": sec.get("gap_reason")}


def _layer(sec: Mapping[str, Any]) -> dict:
    if not sec.get("available"):
        return {"available": False, "reason": sec.get("reason")}
    layer, n = num(sec.get("layer")), num(sec.get("n_layers"))
    return {"available": True, "layer": sec.get("layer"), "n_layers": sec.get("n_layers"),
            "depth": layer / n if layer is not None and n else None, "why": sec.get("reason"),
            "separation": sec.get("separation_at_layer"), "accuracy": sec.get("accuracy_at_layer"),
            "best_layer": sec.get("best_layer")}


def _sae(sec: Mapping[str, Any]) -> dict:
    if not sec.get("available"):
        return {"available": False, "reason": sec.get("reason")}
    return {"available": True, **{k: sec.get(k) for k in (
        "core_k", "core_size", "tail_size", "shared_size", "distinct", "core_min_splits",
        "core_reason")}, "n_splits": len(sec.get("splits") or []),
        "d_sae": (sec.get("sae") or {}).get("d_sae")}


def _split_status(run_dir: Path, have: list[str]) -> dict[str, str]:
    """Why each split the run's data holds has no direction (the rest: "direction")."""
    suite = read_json_or_none(run_dir / "prompts" / "suite.json") or {}
    in_data = [str(s) for s in suite.get("split_order") or suite.get("splits") or []]
    return {s: "direction" if s in have else "no direction (too few refused prompts)"
            for s in dict.fromkeys(in_data + have)}


def load_model_run(run_dir: str | Path, states: Mapping[str, dict]) -> dict:
    """One model's geometry, trade-off gap, dose-response, layer and SAE summary from a
    run folder (finished or not: what is missing says "not run: ...").

    Args:
        run_dir: a run folder (it must hold the ``config.json`` a run writes).
        states: its stages' states (:func:`refusal_atlas.pipeline.stage_states`).

    Raises:
        UserError: ``run_dir`` is not a folder or holds no ``config.json``.

    Example:
        >>> from refusal_atlas.pipeline import STAGES, stage_states
        >>> m = load_model_run("runs/a", stage_states("runs/a", STAGES))  # doctest: +SKIP
        >>> m["geometry"]["names"]  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run folder (no such folder)")
    cfg = read_json_or_none(run_dir / "config.json")
    if not isinstance(cfg, dict):
        raise UserError(f"{run_dir} is not a run folder (no readable config.json); give folders "
                        "that `refusal-atlas run` wrote")
    problems: list[str] = []
    summary = _guard("summary", lambda: summary_section(run_dir, cfg, states), problems)
    geometry = _geometry(_guard("geometry", lambda: geometry_section(run_dir, states), problems))
    have = list(geometry["names"])
    if not have:  # no geometry (e.g. one direction): the directions still count as present
        d = read_json_or_none(run_dir / "directions" / "directions.json") or {}
        have = [str(k) for k in (d.get("directions") or {})] if isinstance(d, dict) else []
    model = (cfg.get("model") or {}).get("name")
    return {
        "label": model_label(model, run_dir), "model": model, "run_dir": str(run_dir.resolve()),
        "data": summary.get("data"), "limit": summary.get("limit"),
        "judge": summary.get("steering_judge"), "dtype": summary.get("dtype"),
        "total_seconds": summary.get("total_seconds"),
        "splits": have, "split_status": _split_status(run_dir, have),
        "geometry": geometry,
        "steering": _steering(_guard("steering", lambda: steering_section(run_dir, states), problems)),
        "layer": _layer(_guard("layer-scan", lambda: layer_scan_section(run_dir, states), problems)),
        "sae": _sae(_guard("sae", lambda: sae_section(run_dir, states), problems)),
        "problems": problems,
    }
