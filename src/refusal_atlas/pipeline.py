"""Orchestration: stages in order, each skipped when its artifact is current.

A stage declares the config settings it depends on and the stages it reads from. Its
fingerprint hashes both (upstream by *completion id*), so a changed setting re-runs
exactly that stage and what depends on it, and ``--force`` on a stage re-runs its
dependents too. Performance-only settings (batch sizes, device) are left out of
fingerprints on purpose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

from .artifacts import write_json
from .config import RunConfig
from .errors import UserError
from .progress import console
from .runfolder import RunFolder, Timer, fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    deps: tuple[str, ...]
    settings: Callable[[RunConfig], Any]
    run: Callable[["RunContext", Path, bool], dict]
    """run(ctx, stage_dir, resuming) -> summary (JSON-ready)."""
    description: str
    enabled: Callable[[RunConfig], bool] = lambda cfg: True
    needs_model: bool = True


class RunContext:
    """What stages share: config, run folder, and lazily loaded model / suite / judges."""

    def __init__(self, config: RunConfig, run_dir: str | Path):
        self.config = config
        self.run = RunFolder(run_dir)
        self._judges: dict[str, Any] = {}

    @cached_property
    def lm(self):
        from .models import load_model

        cfg = self.config.model
        with console.status(f"loading model {cfg.name}"):
            return load_model(cfg.name, dtype=cfg.dtype, device=cfg.device,
                              trust_remote_code=cfg.trust_remote_code,
                              chat_template=cfg.chat_template)

    @cached_property
    def formatter(self):
        from .chat import ChatFormatter

        return ChatFormatter(self.lm.tokenizer, max_tokens=self.config.activations.max_prompt_tokens,
                             system_prompt=self.config.model.system_prompt)

    @cached_property
    def suite(self):
        from .suites import read_suite_snapshot

        return read_suite_snapshot(self.run.dir("prompts"))

    @cached_property
    def activation_cache(self):
        from .activations import ActivationCache

        return ActivationCache(self.config.activations.cache_dir, self.lm.cache_key)

    def judge(self, name: str, options: dict | None = None):
        from .judges import get_judge

        key = f"{name}:{sorted((options or {}).items())}"
        if key not in self._judges:
            self._judges[key] = get_judge(name, **(options or {}))
        return self._judges[key]

    @property
    def layer(self) -> int:
        from .artifacts import read_json

        return int(read_json(self.run.dir("layer_scan") / "layer.json")["layer"])

    def stage_dir(self, name: str) -> Path:
        return self.run.dir(name)


def settings_of(section) -> dict:
    """A config section as fingerprint input: only values that differ from the defaults,
    so adding a new setting to refusal-atlas does not invalidate existing run folders."""
    return section.model_dump(mode="json", exclude_defaults=True)


def _model_settings(cfg: RunConfig) -> dict:
    m = cfg.model
    return {"name": m.name, "dtype": m.dtype, "chat_template": m.chat_template,
            "system_prompt": m.system_prompt, "max_prompt_tokens": cfg.activations.max_prompt_tokens}


def _registry() -> dict[str, Stage]:
    from . import activations, directions, geometry, labels, suites

    stages = [
        Stage("prompts", (), lambda c: settings_of(c.data), suites.run_prompts_stage,
              "load the prompt suite and snapshot it", needs_model=False),
        Stage("labels", ("prompts",),
              lambda c: {"model": _model_settings(c), "judge": c.labels.judge,
                         "judge_options": c.labels.judge_options,
                         "max_new_tokens": c.labels.max_new_tokens},
              labels.run_labels_stage, "generate base responses and judge them (HR/HC/BR/BC)"),
        Stage("pools", ("labels",),
              lambda c: {k: v for k, v in settings_of(c.pools).items()
                         if k not in ("test_per_group", "test_seed")},
              labels.run_pools_stage, "draw the balanced training pools", needs_model=False),
        Stage("test_set", ("pools",),
              lambda c: {"test_per_group": c.pools.test_per_group, "test_seed": c.pools.test_seed},
              labels.run_test_set_stage, "draw the controlled test set (HR/HC/BR/BC)",
              needs_model=False),
        Stage("layer_scan", ("pools",),
              lambda c: {"model": _model_settings(c), "layer": c.activations.layer,
                         "position": c.activations.position, **settings_of(c.layer_scan)},
              directions.run_layer_scan_stage, "HR/BC separation per layer; choose the layer"),
        Stage("activations", ("layer_scan",),
              lambda c: {"model": _model_settings(c), "position": c.activations.position},
              activations.run_activations_stage,
              "activations at (layer, position) for every HR and BC prompt"),
        Stage("directions", ("activations", "pools"), lambda c: {},
              directions.run_directions_stage, "difference-in-means direction per split",
              needs_model=False),
        Stage("geometry", ("directions", "activations"), lambda c: settings_of(c.geometry),
              geometry.run_geometry_stage, "cosines, clustering, bootstrap, MDS, figures",
              needs_model=False),
    ]
    for extra in _extra_stages():
        stages.append(extra)
    return {s.name: s for s in stages}


_EXTRA_STAGE_FACTORIES: list[Callable[[], list[Stage]]] = []


def register_stages(factory: Callable[[], list[Stage]]) -> None:
    """Later pipeline stages (sweeps, SAE, style, report) register themselves here."""
    _EXTRA_STAGE_FACTORIES.append(factory)


def _extra_stages() -> list[Stage]:
    out: list[Stage] = []
    for factory in _EXTRA_STAGE_FACTORIES:
        out.extend(factory())
    return out


def stages() -> dict[str, Stage]:
    _import_stage_modules()
    return _registry()


def _import_stage_modules() -> None:
    """Modules that define later stages call :func:`register_stages` at import."""
    import importlib

    for module in ("refusal_atlas.sweeps", "refusal_atlas.sae.stages", "refusal_atlas.style_stage",
                   "refusal_atlas.report"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


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
    registry = stages()
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
    ctx = context or RunContext(config, run_dir)
    ctx.run.root.mkdir(parents=True, exist_ok=True)
    write_json(ctx.run.root / "config.json", config.to_dict())
    registry = stages()
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
            fp_used = fp
        else:
            folder, resuming = ctx.run.begin(item.name, fp)
            fp_used = fp
        console.print(f"[bold]▶ {item.name}[/bold]: {stage.description}"
                      + (" (resuming)" if resuming else ""))
        with Timer() as timer:
            summary = stage.run(ctx, folder, resuming) or {}
        ctx.run.finish(item.name, fp_used, summary, timer.seconds)
        console.print(f"[green]✓ {item.name}[/green] in {timer.seconds:.1f}s")
    return ctx


def print_plan(ctx: RunContext, planned: list[PlannedStage]) -> None:
    """The stages in order: status, work units, time taken (done) or estimated (to run)."""
    from rich.table import Table

    from .planning import estimate_stages, format_seconds

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
