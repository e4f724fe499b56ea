"""Running the stage list: each stage skipped when its artifact is current.

A stage's fingerprint hashes the settings it depends on and the *completion ids* of the
stages it reads, so a changed setting re-runs exactly that stage and what depends on it,
and ``--force`` on a stage re-runs its dependents too.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rich.table import Table

from ..allocator import keep_freed_memory
from ..artifacts import write_json
from ..chat import read_chat_template
from ..config import RunConfig, migrate_config, saved_run_config
from ..errors import UserError
from ..hf import check_device
from ..models import validate_model_spec
from ..paths import writable_cache_dir
from ..progress import console
from ..report import build_report, write_report
from ..report.sections.common import read_json_or_none
from .context import RunContext
from .integrity import changed_outputs, record_outputs
from .lock import RunLock
from .planning import estimate_stages, format_seconds
from .runfolder import CONFIG_FILE, fingerprint
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
        fp = None if upstream_changes else stage.fingerprint(ctx)
        if name in force:
            status = "forced"
        elif fp is not None and ctx.run.is_done(name, fp):
            status = "done"
        elif fp is not None and (ctx.run.started_fingerprint(name) == fp
                                 or ctx.run.kept(name, _keep_fingerprint(ctx, stage))):
            status = "resume"
        else:
            status = "run"
        if status != "done":
            rerun.add(name)
        planned.append(PlannedStage(name, status, fp, stage.description))
    return planned


def _keep_fingerprint(ctx: RunContext, stage: Stage) -> str | None:
    """What the stage's stores depend on (:attr:`Stage.keeps`), or None: start afresh."""
    if stage.keeps is None:
        return None
    return fingerprint(stage.keeps(ctx.config), stage.upstream(ctx))


class StageInterrupted(KeyboardInterrupt):
    """Ctrl-C during a stage: which stage, and the run folder to resume."""

    def __init__(self, stage: str, run_dir: Path):
        super().__init__(stage)
        self.stage, self.run_dir = stage, run_dir


IDENTITY = {"model": ("name", "dtype", "chat_template", "system_prompt"), "data": None}
"""What makes a run folder about another model or other prompts: the model's weights and
formatting, and every data setting. How it runs (device, batch sizes, executor) is not."""


def _identity(config: dict) -> dict:
    out = {}
    for section, keys in IDENTITY.items():
        values = config.get(section) or {}
        out[section] = dict(values) if keys is None else {k: values.get(k) for k in keys}
    return out


def check_same_study(ctx: RunContext, planned: list[PlannedStage], overwrite: bool) -> None:
    """Refuse to throw away finished stages of a run made with another model or other data."""
    previous = read_json_or_none(ctx.run.root / CONFIG_FILE)
    if not isinstance(previous, dict) or overwrite:
        return
    # Through the config model, so settings added since that run compare as their defaults;
    # a config this version cannot read is compared as written.
    saved = saved_run_config(previous)
    old = _identity(saved.to_dict() if saved is not None else migrate_config(previous))
    new = _identity(ctx.config.to_dict())
    if old == new:
        return
    lost = [p.name for p in planned if p.status != "done" and ctx.run.done_marker(p.name)]
    if not lost:
        return
    changed = [f"{section}.{key}" for section in IDENTITY
               for key in sorted(set(old[section]) | set(new[section]))
               if old[section].get(key) != new[section].get(key)]
    raise UserError(f"{ctx.run.root} holds a run of other settings ({', '.join(changed)}); "
                    f"running these would redo its finished {', '.join(lost)}: use another "
                    "--out, or pass --overwrite to replace them")


def check_artifacts(ctx: RunContext, done: list[PlannedStage]) -> None:
    """Refuse to trust or build on a finished stage whose outputs changed since it finished."""
    for item in done:
        marker = ctx.run.done_marker(item.name) or {}
        changed = changed_outputs(ctx.run.dir(item.name), marker.get("outputs") or {})
        if changed:
            files = ", ".join(f"{item.name}/{c}" for c in changed)
            raise UserError(f"{files} in {ctx.run.root} changed after the {item.name} stage "
                            f"wrote it; redo that stage with --force {item.name} (or restore "
                            "the file)")


def check_model_settings(config: RunConfig) -> None:
    """What can be checked about the model without loading it: the name resolves to
    something loadable, the device exists, a chat template file exists, the cache is
    writable. No network, no weights."""
    validate_model_spec(config.model.name)
    check_device(config.model.device)
    if config.model.chat_template is not None:
        read_chat_template(config.model.chat_template)
    writable_cache_dir()


def check_inputs(ctx: RunContext, planned: list[PlannedStage]) -> None:
    """Each stage that will run checks its inputs, before anything is cleared or written."""
    registry = stage_map()
    todo = [registry[p.name] for p in planned if p.status != "done"]
    if any(stage.needs_model for stage in todo):
        check_model_settings(ctx.config)
    for stage in todo:
        if stage.check is not None:
            stage.check(ctx)


def run_pipeline(config: RunConfig, run_dir: str | Path, targets: Iterable[str],
                 force: Iterable[str] = (), *, overwrite: bool = False,
                 context: RunContext | None = None) -> RunContext:
    """Run the stages ``targets`` need in ``run_dir``, skipping those already done.

    Before anything is written: the run folder is locked for this process, the plan is
    checked against the folder (another model's or data's finished stages are not thrown
    away without ``overwrite``; a finished stage's changed artifact is not trusted), and
    every stage that will run checks its inputs. The config is saved then. The run's
    executor workers (Ray actors) are shut down when it ends, however it ends. The process
    keeps freed memory (:func:`~refusal_atlas.allocator.keep_freed_memory`).
    """
    keep_freed_memory()
    ctx = context or RunContext(config, run_dir)
    with RunLock(ctx.run.root), closing(ctx):
        force = set(force)
        planned = plan(ctx, targets, force)
        # Finished artifacts are verified before the input checks read them; the input
        # checks name a wrong setting before the other-study check blames the whole config.
        check_artifacts(ctx, [p for p in planned if p.status == "done"])
        check_inputs(ctx, planned)
        check_same_study(ctx, planned, overwrite)
        registry = stage_map()
        if any(registry[p.name].needs_model for p in planned if p.status != "done"):
            ctx.lm  # noqa: B018 - load (and check layers against) the model before any write
        write_json(ctx.run.root / CONFIG_FILE, config.to_dict())
        print_estimate(ctx, planned)
        for item in planned:
            _run_stage(ctx, registry[item.name], item, force)
    return ctx


def _run_stage(ctx: RunContext, stage: Stage, item: PlannedStage, force: set[str]) -> None:
    fp = stage.fingerprint(ctx)  # upstream completions are final by now
    if item.name not in force and ctx.run.is_done(item.name, fp):
        console.print(f"[dim]✓ {item.name}: up to date[/dim]")
        return
    if item.name in force:
        ctx.run.invalidate(item.name)
        force.discard(item.name)
        folder, resuming = ctx.run.begin(item.name, fp + ":forced")
    else:
        folder, resuming = ctx.run.begin(item.name, fp, _keep_fingerprint(ctx, stage))
    console.print(f"[bold]▶ {item.name}[/bold]: {stage.description}"
                  + (" (resuming)" if resuming else ""))
    start = time.perf_counter()
    try:
        summary = stage.run(ctx, folder, resuming) or {}
    except KeyboardInterrupt:
        ctx.run.add_attempt(item.name, time.perf_counter() - start)
        raise StageInterrupted(item.name, ctx.run.root) from None
    except BaseException:
        ctx.run.add_attempt(item.name, time.perf_counter() - start)
        raise
    seconds = time.perf_counter() - start
    marker = ctx.run.finish(item.name, fp, summary, seconds,
                            record_outputs(folder, stage.outputs))
    console.print(f"[green]✓ {item.name}[/green] in {seconds:.1f}s"
                  + (f" ({marker['seconds']:.1f}s over {marker['attempts']} attempts)"
                     if marker["attempts"] > 1 else ""))


def print_estimate(ctx: RunContext, planned: list[PlannedStage]) -> None:
    """One line before a run starts: how many stages will run and about how long they take."""
    todo = [p.name for p in planned if p.status != "done"]
    if not todo:
        return
    estimates = estimate_stages(ctx.config, todo)
    known = [e.seconds for e in estimates.values() if e.seconds is not None]
    if not known:
        console.print(f"{len(todo)} stages to run (no time estimate for this model or device)",
                      highlight=False)
        return
    console.print(f"{len(todo)} stages to run, estimated ~{format_seconds(sum(known))}"
                  f"{'' if len(known) == len(todo) else ' for those with an estimate'} "
                  "(rough: calibrated on 2 CPU cores with the default model; "
                  "`run --dry-run` shows each stage)", highlight=False)


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
