"""``run``, the single-stage commands (``label``, ``pools``, ``layer-scan``, ``directions``,
``geometry``) and the listings (``models``, ``suites``, ``fetch-model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..config import RunConfig
from ..data import list_suites
from ..errors import UserError
from ..models import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    load_model,
    packaged_model_dir,
    validate_model_spec,
)
from ..pipeline import RunContext, plan, print_plan, run_pipeline
from ..pipeline.many import ModelJob, model_configs, run_models
from ..pipeline.runner import StageInterrupted
from ..progress import console
from .options import (
    ChatTemplateOpt,
    ConfigOpt,
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DryRunOpt,
    DtypeOpt,
    ExecutorOpt,
    ForceOpt,
    JudgeOpt,
    LayerOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    PositionOpt,
    PresetOpt,
    SetOpt,
    SplitsOpt,
    build_config,
    check_run_dir,
    csv_list,
    default_out,
    name_part,
)

ModelsOpt = Annotated[Optional[str], typer.Option(
    help="Several models, comma-separated: one run folder each (--out DIR: DIR/<model>).")]

RUN_TARGETS = ["geometry", "steering", "ablation", "sae_analysis", "sae_steering", "style",
               "report"]


class Interrupted(BaseException):
    """Ctrl-C during a stage, on its way to :func:`refusal_atlas.cli.main`."""

    def __init__(self, stage: str, run_dir: Path):
        super().__init__(stage)
        self.stage, self.run_dir = stage, run_dir


def execute(targets: list[str], cfg: RunConfig, out: Path | None, force: list[str] | None,
            dry_run: bool, overwrite: bool = False) -> Path:
    """Plan (``--dry-run``) or run ``targets`` in the run folder; returns the folder."""
    if cfg.models:
        return execute_models(targets, cfg, out, force, dry_run, overwrite)
    run_dir = out or default_out(cfg)
    check_run_dir(run_dir)
    if dry_run:
        ctx = RunContext(cfg, run_dir)
        print_plan(ctx, plan(ctx, targets, force or []))
        return run_dir
    try:
        run_pipeline(cfg, run_dir, targets, force or [], overwrite=overwrite)
    except StageInterrupted as exc:
        # typer turns a KeyboardInterrupt into a bare exit code; this carries the stage
        raise Interrupted(exc.stage, exc.run_dir) from None
    console.print(f"[bold green]done[/bold green]: results in {escape(str(run_dir))}")
    return run_dir


def execute_models(targets: list[str], cfg: RunConfig, out: Path | None,
                   force: list[str] | None, dry_run: bool, overwrite: bool = False) -> Path:
    """``--models`` / ``models:``: one run folder per model (``--out DIR``: ``DIR/<model>``,
    else each model's default folder), run by :func:`~refusal_atlas.pipeline.many.run_models`.
    Returns the folder that holds them (``--out``, else ``runs``)."""
    configs = model_configs(cfg)
    for c in configs:  # a typo in the last model fails now, not after the first model's run
        validate_model_spec(c.model.name)
    jobs = [ModelJob(c, check_run_dir(out / name_part(c.model.name) if out else default_out(c)))
            for c in configs]
    if dry_run:
        for job in jobs:
            ctx = RunContext(job.config, job.run_dir)
            print_plan(ctx, plan(ctx, targets, force or []))
        return out or Path("runs")
    try:
        run_models(jobs, targets, force or [], overwrite=overwrite, executor=cfg.executor.name)
    except StageInterrupted as exc:
        raise Interrupted(exc.stage, exc.run_dir) from None
    for job in jobs:
        console.print(f"[bold green]done[/bold green]: {escape(job.config.model.name)} in "
                      f"{escape(str(job.run_dir))}")
    console.print("[bold]compare them:[/bold] refusal-atlas compare "
                  + " ".join(escape(str(j.run_dir)) for j in jobs) + " --out "
                  + escape(str((out or Path("runs")) / "compare")))
    return out or Path("runs")


def stage_command(targets: list[str], help_text: str, *, whole_study: bool = False):
    """A command that runs ``targets`` (and what they need) with the common options."""
    def command(
        config: ConfigOpt = None, preset: PresetOpt = None, model: ModelOpt = None,
        models: ModelsOpt = None,
        data: DataOpt = None, data_dir: DataDirOpt = None, splits: SplitsOpt = None,
        out: OutOpt = None, layer: LayerOpt = None, position: PositionOpt = None,
        judge: JudgeOpt = None, dtype: DtypeOpt = None, device: DeviceOpt = None,
        chat_template: ChatTemplateOpt = None, executor: ExecutorOpt = None,
        set_values: SetOpt = None,
        force: ForceOpt = None, dry_run: DryRunOpt = False, overwrite: OverwriteOpt = False,
    ) -> None:
        if model is not None and models is not None:
            raise UserError("give --model or --models, not both")
        cfg = build_config(config, preset, set_values, model=model, data=data,
                           data_dir=data_dir, splits=csv_list(splits or None), layer=layer,
                           position=position, judge=judge, dtype=dtype, device=device,
                           chat_template=chat_template, executor=executor,
                           models=csv_list(models, empty_error="--models is empty; give "
                                           "comma-separated model names"))
        if whole_study and judge is not None:  # one judge for the whole study, whatever --set said
            cfg.steering.judge = judge
        run_dir = execute(targets, cfg, out, force, dry_run, overwrite)
        report = run_dir / "report.html"
        if whole_study and not dry_run and report.exists():
            console.print(f"[bold]report:[/bold] {escape(str(report.resolve()))}")

    command.__doc__ = help_text
    return command


RUN_HELP = """The whole study in one run folder: labels, pools, directions, geometry, steering and
    ablation sweeps, SAE analysis and steering, refusal style, and report.html.

    With no options: the default model on the built-in demo prompts. Re-run the same
    command after an interruption to continue where it stopped.
    """
run_command = stage_command(RUN_TARGETS, RUN_HELP, whole_study=True)


STAGE_COMMANDS = {
    "label": (["labels"], "Generate the base model's responses and judge them (HR/HC/BR/BC): "
                          "every prompt, or only those the pools and the test set "
                          "need with --set labels.label_all=false."),
    "pools": (["pools", "test_set"], "Draw the balanced training pools and the controlled test "
                                     "set from the labels."),
    "layer-scan": (["layer_scan"], "Measure HR/BC separation at every layer and choose the "
                                   "layer."),
    "directions": (["test_set", "directions", "geometry"],
                   "Per-split refusal directions and their geometry (runs label, pools, layer "
                   "scan, activations first)."),
    "geometry": (["geometry"], "Cosine matrix, clustering, silhouette, bootstrap stability and "
                               "MDS of the directions."),
}


def models_command() -> None:
    """List the packaged models (fetched from PyPI wheels on first use)."""
    table = Table("name", "description", "cached")
    for name, m in PACKAGED_MODELS.items():
        cached = (packaged_model_dir(name) / "refusal_atlas_model.json").exists()
        table.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), m.description,
                      "yes" if cached else "no")
    console.print(table)


def suites_command() -> None:
    """List the prompt suites."""
    table = Table("suite", "description")
    for name, description in list_suites():
        table.add_row(name, description)
    console.print(table)


def fetch_model_command(model: ModelOpt = None, dtype: DtypeOpt = None) -> None:
    """Download, verify and convert a model now (otherwise done on first use)."""
    lm = load_model(model or DEFAULT_MODEL, dtype=dtype or "auto")
    console.print(lm.describe())
