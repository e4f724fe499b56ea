"""Running the stage list: each stage skipped when its artifact is current.

A stage's fingerprint hashes the settings it depends on and the *completion ids* of the
stages it reads, so a changed setting re-runs exactly that stage and what depends on it,
and ``--force`` on a stage re-runs its dependents too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rich.table import Table

from ..artifacts import write_json
from ..config import RunConfig
from ..errors import UserError
from ..progress import console
from ..report import build_report, write_report
from .context import RunContext
from .planning import estimate_stages, format_seconds
from .runfolder import Timer, fingerprint
from .stage import Stage
from .stages import STAGES, stage_map
from .states import stage_states


def required(targets: Iterable[str], registry: dict[str, Stage], cfg: RunConfig) -> list[str]:
    """Stages needed for ``targets``, in dependency order, skipping disabled ones."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in registry:
            raise UserError(f"unknown stage {name!r}; stages: {', '.join(registry)}")
        if name in order:
            return
        for dep in registry[name].deps:
            visit(dep)
        order.append(name)

    for target in targets:
        visit(target)
    return [n for n in order if registry[n].enabled(cfg)]


@dataclass
class PlannedStage:
    name: str
    status: str
    """done | run | resume | forced"""
    fingerprint: str | None
    description: str


def plan(ctx: RunContext, targets: Iterable[str], force: Iterable[str] = ()) -> list[PlannedStage]:
    registry = stage_map()
    force = set(force)
    unknown = force - set(registry)
    if unknown:
        raise UserError(f"unknown stage(s) for --force: {sorted(unknown)}; stages: "
                        f"{', '.join(registry)}")
    planned: list[PlannedStage] = []
    rerun: set[str] = set()
    for name in required(targets, registry, ctx.config):
        stage = registry[name]
        upstream_changes = any(d in rerun for d in stage.deps)
        fp = None if upstream_changes else _fingerprint(ctx, stage)
        if name in force:
            status = "forced"
        elif fp is not None and ctx.run.is_done(name, fp):
            status = "done"
        elif fp is not None and ctx.run.started_fingerprint(name) == fp:
            status = "resume"
        else:
            status = "run"
        if status != "done":
            rerun.add(name)
        planned.append(PlannedStage(name, status, fp, stage.description))
    return planned


def _fingerprint(ctx: RunContext, stage: Stage) -> str:
    upstream = {d: ctx.run.completion_id(d) for d in stage.deps}
    return fingerprint(stage.settings(ctx.config), upstream)


def run_pipeline(config: RunConfig, run_dir: str | Path, targets: Iterable[str],
                 force: Iterable[str] = (), *, context: RunContext | None = None) -> RunContext:
    """Run the stages ``targets`` need in ``run_dir``, skipping those already done."""
    ctx = context or RunContext(config, run_dir)
    ctx.run.root.mkdir(parents=True, exist_ok=True)
    write_json(ctx.run.root / "config.json", config.to_dict())
    registry = stage_map()
    force = set(force)
    for item in plan(ctx, targets, force):
        stage = registry[item.name]
        fp = _fingerprint(ctx, stage)  # upstream completions are final by now
        if item.name not in force and ctx.run.is_done(item.name, fp):
            console.print(f"[dim]✓ {item.name}: up to date[/dim]")
            continue
        if item.name in force:
            ctx.run.invalidate(item.name)
            force.discard(item.name)
            folder, resuming = ctx.run.begin(item.name, fp + ":forced")
        else:
            folder, resuming = ctx.run.begin(item.name, fp)
        console.print(f"[bold]▶ {item.name}[/bold]: {stage.description}"
                      + (" (resuming)" if resuming else ""))
        with Timer() as timer:
            summary = stage.run(ctx, folder, resuming) or {}
        ctx.run.finish(item.name, fp, summary, timer.seconds)
        console.print(f"[green]✓ {item.name}[/green] in {timer.seconds:.1f}s")
    return ctx


def print_plan(ctx: RunContext, planned: list[PlannedStage]) -> None:
    """The stages in order: status, work units, time taken (done) or estimated (to run)."""
    todo = [p.name for p in planned if p.status != "done"]
    estimates = estimate_stages(ctx.config, todo)
    table = Table("stage", "status", "work", "time", "what it does",
                  title=f"plan for {ctx.run.root}")
    total = 0.0
    unknown = False
    for item in planned:
        if item.status == "done":
            marker = ctx.run.done_marker(item.name) or {}
            work, time_text = "-", f"took {format_seconds(marker.get('seconds'))}"
        else:
            est = estimates.get(item.name)
            work = f"{est.units} {est.unit}" if est and est.units else "-"
            seconds = est.seconds if est else None
            time_text = f"~{format_seconds(seconds)}"
            if seconds is None:
                unknown = True
            else:
                total += seconds
        table.add_row(item.name, item.status, work, time_text, item.description)
    console.print(table)
    note = " (some stages have no estimate)" if unknown else ""
    console.print(f"estimated time for the remaining stages: ~{format_seconds(total)}{note}; "
                  "estimates are rough, calibrated on a 2-core CPU with the default model")


def write_run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict:
    """Build a run folder's report and write ``report.html`` / ``report.md`` into ``out_dir``
    (default: the run folder). Returns the report data, with ``html`` and ``md`` paths.

    Example:
        >>> from refusal_atlas.pipeline import write_run_report
        >>> data = write_run_report("runs/demo-qwen2.5-coder-0.5b-instruct")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    data = build_report(run_dir, stage_states(run_dir, STAGES))
    html_path, md_path = write_report(data, out_dir if out_dir is not None else run_dir)
    return {**data, "html": html_path, "md": md_path}
