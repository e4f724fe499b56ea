"""Command-line options and how they become a config.

Every option that sets a config value is named in :data:`OPTION_PATHS` (option name ->
dotted config path); :func:`build_config` turns a command's named options into nested
overrides on top of preset <- file <- options <- ``--set``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from ..config import RunConfig, load_config
from ..errors import UserError

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
DeviceOpt = Annotated[Optional[str], typer.Option(
    help="auto (CUDA when available), cpu, cuda, cuda:1, ...")]
ExecutorOpt = Annotated[Optional[str], typer.Option(
    help="Who runs the work units: local (default) or ray (executor.* settings).")]
ChatTemplateOpt = Annotated[Optional[str], typer.Option(
    help="Jinja chat template file for models without one.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override any config value: section.key=value (repeatable).")]
ForceOpt = Annotated[Optional[list[str]], typer.Option(
    "--force", help="Redo this stage and what depends on it (repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Let other model/data settings replace the finished stages of --out.")]

OPTION_PATHS: dict[str, tuple[str, ...]] = {
    "model": ("model.name",),
    "models": ("models",),
    "dtype": ("model.dtype",),
    "device": ("model.device",),
    "chat_template": ("model.chat_template",),
    "data": ("data.suite",),
    "data_dir": ("data.data_dir",),
    "splits": ("data.splits",),
    "layer": ("activations.layer",),
    "position": ("activations.position",),
    "judge": ("labels.judge", "steering.judge"),
    "steer_judge": ("steering.judge",),
    "judge_options": ("steering.judge_options",),
    "directions": ("steering.directions",),
    "extra_directions": ("steering.extra_directions",),
    "alphas": ("steering.alphas",),
    "steer_layers": ("steering.layers",),
    "ablation": ("steering.ablation",),
    "max_new_tokens": ("steering.max_new_tokens",),
    "batch_size": ("steering.batch_size",),
    "prompts": ("steering.prompts",),
    "executor": ("executor.name",),
    "sae_source": ("sae.source",),
    "sae_layer": ("sae.layer",),
    "sae_architecture": ("sae.train.architecture",),
    "sae_expansion": ("sae.train.expansion",),
    "sae_k": ("sae.train.k",),
    "sae_steps": ("sae.train.steps",),
    "sae_max_tokens": ("sae.train.max_tokens",),
    "sae_corpus_files": ("sae.corpus.files",),
    "sae_top_k": ("sae.analysis.top_k",),
    "sae_core_min_splits": ("sae.analysis.core_min_splits",),
    "sae_core_k": ("sae.analysis.core_k",),
    "sae_alphas": ("sae.steer.alphas",),
    "sae_sets": ("sae.steer.sets",),
    "sae_latents": ("sae.steer.latents",),
    "sae_splits": ("sae.steer.splits",),
    "sae_max_splits": ("sae.steer.max_splits",),
}
"""Option name -> the config values it sets. One table: the CLI and the config never drift."""


def build_config(config: Path | None = None, preset: str | None = None,
                 set_values: list[str] | None = None, **options: Any) -> RunConfig:
    """preset <- config file <- named options (:data:`OPTION_PATHS`) <- ``--set`` values.
    Options left at ``None`` are not set."""
    overrides: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        for path in OPTION_PATHS[name]:
            *sections, key = path.split(".")
            node = overrides
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = value
    return load_config(config, preset=preset, overrides=overrides, set_values=set_values)


def config_of_run(out: Path | None, config: Path | None, preset: str | None,
                  set_values: list[str] | None, **options: Any) -> tuple[RunConfig, Path]:
    """The config of a command over an existing run folder: the folder's own
    ``config.json`` (so its finished stages stay done) unless ``--config`` is given, with the
    command's options on top. Returns ``(config, run folder)``."""
    run_dir = out if out is not None else default_out(build_config(config, preset, set_values,
                                                                   **options))
    check_run_dir(run_dir)
    if config is None and (run_dir / "config.json").exists():
        config = run_dir / "config.json"
    return build_config(config, preset, set_values, **options), run_dir


def csv_list(text: str | None, *, empty_error: str | None = None) -> list[str] | None:
    """``a,b , c`` -> ``["a", "b", "c"]``; with ``empty_error``, an option given but empty
    is that error."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if empty_error is not None and not items:
        raise UserError(empty_error)
    return items


def int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        items = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a comma-separated list of integers") from None
    if not items:
        raise UserError(f"{what} is empty; give comma-separated integers")
    return items


def key_values(items: list[str] | None, what: str) -> dict[str, Any] | None:
    """Repeated ``key=value`` options, values parsed as YAML (so 1, true, [1, 2] work)."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{what} {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def rate(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}"


_FILE_SUFFIXES = (".gguf", ".jsonl", ".json", ".csv", ".yaml", ".yml", ".toml")


def name_part(text: str) -> str:
    """The last component of a model id, path or file, without a file suffix. Path.stem
    would cut "qwen2.5-coder-0.5b-instruct" at its first dot."""
    name = Path(text.rstrip("/")).name or text
    for suffix in _FILE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def default_out(cfg: RunConfig) -> Path:
    suite = name_part(cfg.data.suite) if cfg.data.suite else "run"
    return Path("runs") / f"{suite}-{name_part(cfg.model.name)}"


def check_run_dir(path: str | Path) -> Path:
    """The run folder resolved, once it is known that it can be made and written to: one
    line (not a traceback hours later) for an ``--out`` that is a file, lies under a file
    or where nothing may be created (``/proc``, a read-only disk, no permission). Checked
    before anything runs; folders made for the check are removed again, so a ``--dry-run``
    or a command refused later leaves nothing behind."""
    given = Path(path).expanduser()
    try:
        run_dir = given.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise UserError(f"--out {given} cannot be resolved ({exc}); give another folder") from None
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {given} is a file, not a folder; give a folder for the run")
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"--out {given} lies under {existing}, which is a file; give a folder "
                        "for the run")
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write the run folder {given} ({exc.strerror or exc}); give an "
                        "--out where you may create files") from None
    finally:
        for folder in created:  # deepest first; only what this check made, and only if empty
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # mkdir stopped above it
            except OSError:
                break
    return run_dir
