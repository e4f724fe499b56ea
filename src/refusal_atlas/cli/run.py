"""``run``, the single-stage commands (``label``, ``pools``, ``layer-scan``, ``directions``,
``geometry``) and the listings (``models``, ``suites``, ``fetch-model``)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..config import RunConfig
from ..data import list_suites
from ..models import DEFAULT_MODEL, PACKAGED_MODELS, load_model, packaged_model_dir
from ..pipeline import RunContext, plan, print_plan, run_pipeline
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
)

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


def stage_command(targets: list[str], help_text: str, *, whole_study: bool = False):
    """A command that runs ``targets`` (and what they need) with the common options."""
    def command(
        config: ConfigOpt = None, preset: PresetOpt = None, model: ModelOpt = None,
        data: DataOpt = None, data_dir: DataDirOpt = None, splits: SplitsOpt = None,
        out: OutOpt = None, layer: LayerOpt = None, position: PositionOpt = None,
        judge: JudgeOpt = None, dtype: DtypeOpt = None, device: DeviceOpt = None,
        chat_template: ChatTemplateOpt = None, set_values: SetOpt = None,
        force: ForceOpt = None, dry_run: DryRunOpt = False, overwrite: OverwriteOpt = False,
    ) -> None:
        cfg = build_config(config, preset, set_values, model=model, data=data,
                           data_dir=data_dir, splits=csv_list(splits or None), layer=layer,
                           position=position, judge=judge, dtype=dtype, device=device,
                           chat_template=chat_template)
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
    "label": (["labels"], "Generate the base model's responses for every prompt and judge them "
                          "(HR/HC/BR/BC)."),
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
