"""``export``: a run's directions in the formats other tools steer with."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..directions import load_directions
from ..errors import UserError
from ..export import (
    abliterate_model,
    check_abliteration_support,
    direction_to_llamacpp,
    direction_to_steering_vector_file,
    directions_to_safetensors,
    save_abliterated,
)
from ..export.abliterate import RECORD_FILE
from ..export.layers import parse_layer_range
from ..pipeline import RunContext
from ..pipeline.runfolder import RunFolder
from ..pipeline.stages.sweep import sweep_prompts
from ..progress import console
from .options import DeviceOpt, build_config, csv_list, rate


class Format(str, Enum):
    llamacpp = "llamacpp"
    steering_vectors = "steering-vectors"
    abliterated = "abliterated"
    safetensors = "safetensors"


SUFFIX = {Format.llamacpp: ".gguf", Format.steering_vectors: ".safetensors"}
KL_PROMPTS = 64
"""Benign prompts the first-token KL is averaged over (the run's test set first)."""


def _run_directions(run_dir: Path, names: list[str]) -> dict:
    folder = RunFolder(run_dir)
    if not (folder.dir("directions") / "directions.json").is_file():
        raise UserError(f"{run_dir} has no directions: run `refusal-atlas directions --out "
                        f"{run_dir}` first")
    available = load_directions(folder.dir("directions"))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserError(f"unknown direction(s) {', '.join(unknown)}; {run_dir} has "
                        f"{', '.join(available)}")
    return {n: available[n] for n in dict.fromkeys(names)}


def _targets(out: Path, names: list[str], suffix: str) -> dict[str, Path]:
    """One file per direction: ``--out`` itself for one direction named ``*.suffix``,
    else ``--out/NAME.suffix``."""
    if len(names) == 1 and out.suffix.lower() == suffix:
        return {names[0]: out}
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for {len(names)} directions")
    return {n: out / f"{n}{suffix}" for n in names}


def _abliterate(ctx: RunContext, directions: dict, out: Path) -> dict:
    lm = ctx.lm
    check_abliteration_support(lm.model)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; give a new folder")
    test_prompts, judge, why = None, None, None
    if ctx.run.done_marker("test_set") and ctx.run.done_marker("labels"):
        test_prompts = sweep_prompts(ctx)
        judge = ctx.judge(ctx.config.steering.judge, ctx.config.steering.judge_options)
    else:
        why = "the run has no controlled test set (run `refusal-atlas steer` or `run` first)"
    benign = [p.text for p in test_prompts or [] if not p.harmful]
    if not benign:
        benign = [p.text for p in ctx.suite.prompts if not p.harmful]
    record = abliterate_model(lm, [d.vector for d in directions.values()],
                              benign_prompts=benign[:KL_PROMPTS], test_prompts=test_prompts,
                              judge=judge, max_new_tokens=ctx.config.steering.max_new_tokens,
                              batch_size=min(ctx.config.steering.batch_size, 16),
                              formatter=ctx.formatter)
    record.update({"directions": list(directions), "model": lm.name, "run": str(ctx.run.root),
                   "rates_skipped": why})
    save_abliterated(lm, out, record)
    return record


def export_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder with directions.")],
    direction: Annotated[str, typer.Option(
        "--direction", help="Direction name(s), comma-separated (abliteration projects out "
                            "their span).")],
    fmt: Annotated[Format, typer.Option("--format", help="llamacpp, steering-vectors, "
                                                          "abliterated or safetensors.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File (one direction) or folder.")],
    alpha: Annotated[Optional[float], typer.Option(
        help="Strength in residual-stream units (default: each direction's projection gap).")] = None,
    layers: Annotated[Optional[str], typer.Option(
        help="resid_pre layers to steer at, e.g. 10-14 (default: the direction's layer).")] = None,
    device: DeviceOpt = None,
) -> None:
    """Export directions of a run: a llama.cpp control vector, a steering-vectors vector,
    abliterated weights (Hugging Face folder) or plain safetensors. See docs/export.md."""
    names = csv_list(direction, empty_error="--direction is empty; give direction names")
    if fmt in (Format.abliterated, Format.safetensors) and (alpha is not None or layers):
        raise UserError(f"--alpha and --layers apply to llamacpp and steering-vectors, not "
                        f"{fmt.value}")
    chosen_layers = parse_layer_range(layers)
    directions = _run_directions(run_dir, names)
    if fmt == Format.safetensors:
        path = out if out.suffix.lower() == ".safetensors" else out / "directions.safetensors"
        console.print(f"wrote {directions_to_safetensors(directions, path)}")
        return
    config = run_dir / "config.json"
    cfg = build_config(config if config.is_file() else None, None,
                       ["model.dtype=float32"] if fmt == Format.abliterated else None,
                       device=device)
    ctx = RunContext(cfg, run_dir)
    if fmt == Format.abliterated:
        record = _abliterate(ctx, directions, out)
        kl = record["kl_first_token"]
        rates = record.get("rates") or {}
        agree = record.get("hook_agreement")
        console.print(f"wrote {out}: first-token KL {kl['mean']:.4f} (max {kl['max']:.4f}, "
                      f"{kl['n_prompts']} benign prompts)"
                      + (f"; RR {rate(rates.get('rr'))}, ORR {rate(rates.get('orr'))}"
                         if rates else "")
                      + (f"; {agree['identical_responses']}/{agree['n_prompts']} responses equal "
                         "to hook ablation" if agree else "") + f" ({RECORD_FILE})")
        return
    lm = ctx.lm
    targets = _targets(out, list(directions), SUFFIX[fmt])
    for name, path in targets.items():
        d = directions[name]
        if fmt == Format.llamacpp:
            written = direction_to_llamacpp(d, path, model_hint=str(lm.model.config.model_type),
                                            alpha=alpha, layers=chosen_layers,
                                            n_layers=lm.n_layers)
        else:
            written = direction_to_steering_vector_file(d, path, alpha=alpha,
                                                        layers=chosen_layers,
                                                        n_layers=lm.n_layers)
        console.print(f"wrote {written}")
