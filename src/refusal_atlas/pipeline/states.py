"""What state each stage of a run folder is in, for the report and the plan."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import saved_run_config
from ..report.format import num
from ..report.sections.common import read_json_or_none
from .stage import Stage


def stage_states(run_dir: str | Path, stages: Iterable[Stage],
                 config: Mapping[str, Any] | None = None) -> OrderedDict[str, dict]:
    """``{stage: {name, status, seconds, finished_at, summary, reason}}`` for every stage
    but the report, in pipeline order.

    status: ``done`` (``_done.json`` present), ``disabled`` (by the run's config),
    ``incomplete`` (started, not finished) or ``missing``. ``config`` defaults to the run
    folder's ``config.json``; ``stages`` is the pipeline's list
    (:data:`refusal_atlas.pipeline.STAGES`).
    """
    run_dir = Path(run_dir)
    if config is None:
        config = read_json_or_none(run_dir / "config.json")
    rc = saved_run_config(config)  # None: an older/newer config; every stage counts as enabled
    out: OrderedDict[str, dict] = OrderedDict()
    for stage in stages:
        name = stage.name
        if name == "report":
            continue
        folder = run_dir / name
        marker = read_json_or_none(folder / "_done.json")
        state: dict[str, Any] = {"name": name, "status": "missing", "seconds": None,
                                 "finished_at": None, "summary": None, "reason": None}
        enabled = True
        if rc is not None:
            try:
                enabled = bool(stage.enabled(rc))
            except Exception:  # noqa: BLE001
                enabled = True
        why = stage.disabled_by or "config"
        if isinstance(marker, dict):
            state.update(status="done", seconds=num(marker.get("seconds")),
                         finished_at=marker.get("finished_at"), summary=marker.get("summary"))
            if not enabled:
                state["reason"] = (f"disabled in this run's config ({stage.disabled_by or name})"
                                   "; results are from an earlier run")
        elif not enabled:
            state.update(status="disabled", reason=f"the stage is disabled ({why})")
        elif (folder / "_started.json").exists():
            state.update(status="incomplete",
                         reason=f"the stage started but has not finished ({name}/_done.json "
                                "missing)")
        else:
            state["reason"] = f"the stage has not run in this run folder ({name}/_done.json " \
                              "missing)"
        out[name] = state
    return out
