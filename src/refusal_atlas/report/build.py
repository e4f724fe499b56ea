"""Build the report's data: every section read from a run folder's artifacts, then the
findings computed from the sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .paper_checks import findings
from .sections.beyond import beyond_section
from .sections.common import read_json_or_none
from .sections.geometry import geometry_section
from .sections.layer_scan import layer_scan_section
from .sections.pools import pools_section
from .sections.sae import sae_section
from .sections.samples import samples_section
from .sections.steering import ablation_section, steering_section
from .sections.style import style_section
from .sections.summary import summary_section

__all__ = ["FORMAT", "FORMAT_VERSION", "SECTION_IDS", "ReportData", "build_report"]

ReportData = dict[str, Any]
"""What :func:`build_report` returns: plain dicts / lists / numbers / strings (JSON-ready)."""

FORMAT = "refusal-atlas/report"
FORMAT_VERSION = 1
SECTION_IDS = ("summary", "findings", "pools", "layer-scan", "geometry", "steering", "ablation",
               "sae", "style", "beyond", "samples")


def _guard(name: str, fn: Callable[[], dict], problems: list[str]) -> dict:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a malformed artifact must not kill the report
        msg = f"{name}: could not read its artifacts ({type(exc).__name__}: {exc})"
        problems.append(msg)
        return {"available": False, "reason": f"not shown: {msg}", "error": msg}


def build_report(run_dir: str | Path, states: Mapping[str, dict], *,
                 samples_per_condition: int | None = None) -> ReportData:
    """Everything the report shows, read from the run folder's artifacts (JSON-ready).

    Args:
        run_dir: a run folder (finished or not: missing stages become "not run" notes).
        states: ``{stage: {status, seconds, finished_at, summary, reason}}`` in pipeline
            order, from :func:`refusal_atlas.pipeline.stage_states`.
        samples_per_condition: responses shown per condition (default: the run's config).

    Example:
        >>> from refusal_atlas.pipeline import STAGES, stage_states
        >>> data = build_report("runs/qwen", stage_states("runs/qwen", STAGES))  # doctest: +SKIP
        >>> [f["status"] for f in data["findings"]]  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    cfg = read_json_or_none(run_dir / "config.json") or {}
    rcfg = cfg.get("report") or {}
    n = samples_per_condition if samples_per_condition is not None else \
        int(rcfg.get("samples_per_condition", 4) or 0)
    problems: list[str] = []
    data: ReportData = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "title": rcfg.get("title") or f"refusal-atlas: {(cfg.get('model') or {}).get('name') or run_dir.name}",
        "run_dir": str(run_dir.resolve()),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg,
    }
    data["summary"] = _guard("summary", lambda: summary_section(run_dir, cfg, states), problems)
    data["pools"] = _guard("pools", lambda: pools_section(run_dir, states), problems)
    data["layer_scan"] = _guard("layer-scan", lambda: layer_scan_section(run_dir, states), problems)
    data["geometry"] = _guard("geometry", lambda: geometry_section(run_dir, states), problems)
    data["steering"] = _guard("steering", lambda: steering_section(run_dir, states), problems)
    data["ablation"] = _guard("ablation", lambda: ablation_section(run_dir, states), problems)
    data["sae"] = _guard("sae", lambda: sae_section(run_dir, states), problems)
    data["style"] = _guard("style", lambda: style_section(run_dir, states), problems)
    data["beyond"] = _guard("beyond", lambda: beyond_section(run_dir, states), problems)
    data["samples"] = _guard("samples", lambda: samples_section(run_dir, states, n), problems)
    try:
        data["findings"] = findings(data)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"findings: {type(exc).__name__}: {exc}")
        data["findings"] = []
    data["problems"] = problems
    return data
