"""``sae train|analyze|steer``: SAE stages over a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..artifacts import read_json
from ..errors import UserError
from ..pipeline.inputs import run_analysis
from ..pipeline.runfolder import RunFolder
from ..pipeline.stages.sae import describe_metrics
from ..pipeline.stages.sae_steering import write_comparison
from ..progress import console
from ..sae.comparison import comparison_markdown
from ..sae.describe import describe_analysis
from ..sweeps import parse_alphas
from .options import (
    ConfigOpt,
    DataOpt,
    DeviceOpt,
    DryRunOpt,
    ForceOpt,
    JudgeOpt,
    ModelOpt,
    OutOpt,
    PresetOpt,
    SetOpt,
    config_of_run,
    csv_list,
    int_list,
)
from .run import execute

SaeSourceOpt = Annotated[Optional[str], typer.Option(
    "--source", help="'train' (default) or a published SAE: params.npz, SAELens folder, "
                     "dictionary_learning folder, gemma-scope:REPO/PATH, saelens:RELEASE/ID.")]
SaeLayerOpt = Annotated[Optional[int], typer.Option(
    "--layer", help="resid_pre layer the SAE reads (default: the direction layer; a published "
                    "SAE: its own).")]
SaeExpansionOpt = Annotated[Optional[int], typer.Option(help="Latents per residual dimension.")]
SaeKOpt = Annotated[Optional[int], typer.Option("--k", help="Active latents per token (TopK).")]
SaeStepsOpt = Annotated[Optional[int], typer.Option("--steps", help="Training steps.")]
SaeMaxTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-tokens", help="Cap on training rows (token positions).")]
SaeCorpusOpt = Annotated[Optional[list[Path]], typer.Option(
    "--corpus-file", help="Extra text for the training corpus (.txt/.md/.jsonl; repeatable).")]
SaeArchOpt = Annotated[Optional[str], typer.Option("--architecture", help="topk or jumprelu.")]
SaeTopKOpt = Annotated[Optional[str], typer.Option(
    "--top-k", help="Comma-separated K values for the per-split top-K lists (default 10,50).")]
SaeCoreMinOpt = Annotated[Optional[int], typer.Option(
    "--core-min-splits", help="A core latent is in the top-K of at least this many splits "
                              "(default: half the splits, rounded up).")]
SaeCoreKOpt = Annotated[Optional[int], typer.Option(
    "--core-k", help="The K whose core and tail are reported and steered (default: largest).")]
SaeAlphasOpt = Annotated[Optional[str], typer.Option(
    "--alphas", help="Comma-separated alphas or 'auto' ({0,10,30,60} scaled like direction "
                     "steering, on the unit-normalised latent sum).")]
SaeSetsOpt = Annotated[Optional[str], typer.Option(
    "--sets", help="Latent sets to steer with: core, split_topk, tail, user (comma-separated).")]
SaeLatentsOpt = Annotated[Optional[str], typer.Option(
    "--latents", help="Comma-separated latent ids, steered together as 'sae_user'.")]
SaeSplitsOpt = Annotated[Optional[str], typer.Option(
    "--splits", help="Splits whose top-K / tail sets are steered (default: a few spanning the "
                     "geometry's clusters).")]
SaeMaxSplitsOpt = Annotated[Optional[int], typer.Option(
    "--max-splits", help="How many splits to choose when --splits is not given.")]
SaeMaxNewOpt = Annotated[Optional[int], typer.Option(
    "--max-new-tokens", help="New tokens per response (shared with direction steering).")]
SaeBatchOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", help="Rows per generation batch (speed only).")]


def over_run_folder(targets: list[str], out: Path | None, config: Path | None,
                    preset: str | None, set_values: list[str] | None, force: list[str] | None,
                    dry_run: bool, **options: Any) -> tuple[Path, bool]:
    """Run SAE stages over a run folder, starting from its own config.json (so finished
    upstream stages stay done), with the command's options on top. Returns the run folder
    and whether the target stage ran now (False: it was already up to date)."""
    cfg, run_dir = config_of_run(out, config, preset, set_values, **options)
    if not cfg.sae.enabled:
        raise UserError("sae.enabled is false in this run's config; pass --set sae.enabled=true")
    folder = RunFolder(run_dir)
    before = [folder.completion_id(t) for t in targets]
    execute(targets, cfg, run_dir, force, dry_run)
    return run_dir, [folder.completion_id(t) for t in targets] != before


def sae_train_command(
    out: OutOpt = None, source: SaeSourceOpt = None, layer: SaeLayerOpt = None,
    expansion: SaeExpansionOpt = None, k: SaeKOpt = None, steps: SaeStepsOpt = None,
    max_tokens: SaeMaxTokensOpt = None, corpus_file: SaeCorpusOpt = None,
    architecture: SaeArchOpt = None, config: ConfigOpt = None, preset: PresetOpt = None,
    model: ModelOpt = None, data: DataOpt = None, device: DeviceOpt = None,
    set_values: SetOpt = None, force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """Train (or load) the run's SAE; report variance explained, L0 and dead latents.

    The corpus is the run's prompts (all positions, the analysis position oversampled), the
    base model's responses and your text files; the SAE is saved in the SAELens format.
    """
    run_dir, fresh = over_run_folder(
        ["sae"], out, config, preset, set_values, force, dry_run, model=model, data=data,
        device=device, sae_source=source, sae_layer=layer, sae_expansion=expansion, sae_k=k,
        sae_steps=steps, sae_max_tokens=max_tokens, sae_architecture=architecture,
        sae_corpus_files=[str(p) for p in corpus_file] if corpus_file else None)
    if dry_run:
        return
    meta = read_json(run_dir / "sae" / "sae.json")
    if not fresh:
        console.print(describe_metrics(meta))
    if meta.get("train"):
        t = meta["train"]
        console.print(f"trained {t['steps']} steps on {t['n_train_rows']} rows in "
                      f"{t['seconds']:.0f}s; saved to {run_dir / 'sae' / meta['spec']}")


def sae_analyze_command(
    out: OutOpt = None, top_k: SaeTopKOpt = None, core_min_splits: SaeCoreMinOpt = None,
    core_k: SaeCoreKOpt = None, source: SaeSourceOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = None, set_values: SetOpt = None, force: ForceOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Find the SAE latents that carry refusal in each split: shared core and long tail.

    Score = HR firing share - BC firing share at the analysis position; top-K lists,
    popularity, intersections and each top latent's top-activating prompts.
    """
    run_dir, fresh = over_run_folder(
        ["sae_analysis"], out, config, None, set_values, force, dry_run, device=device,
        sae_top_k=int_list(top_k, "--top-k"), sae_core_min_splits=core_min_splits,
        sae_core_k=core_k, sae_source=source)
    if dry_run:
        return
    if not fresh:
        console.print(describe_analysis(run_analysis(run_dir)))
    console.print(f"latent sheet for labelling: {run_dir / 'sae_analysis' / 'latents.md'}")


def sae_steer_command(
    out: OutOpt = None, alphas: SaeAlphasOpt = None, sets: SaeSetsOpt = None,
    latents: SaeLatentsOpt = None, splits: SaeSplitsOpt = None,
    max_splits: SaeMaxSplitsOpt = None, judge: JudgeOpt = None,
    max_new_tokens: SaeMaxNewOpt = None, batch_size: SaeBatchOpt = None,
    config: ConfigOpt = None, device: DeviceOpt = None, set_values: SetOpt = None,
    force: ForceOpt = None, dry_run: DryRunOpt = False,
) -> None:
    """Steer with SAE latent sets (core, per-split top-10); RR / ORR next to directions.

    Adds alpha x the sum of the latents' decoder rows at the SAE's layer, every position,
    through the direction-steering engine, prompts and judge.
    """
    run_dir, _ = over_run_folder(
        ["sae_steering"], out, config, None, set_values, force, dry_run, device=device,
        sae_alphas=parse_alphas(alphas), sae_sets=csv_list(sets or None),
        sae_latents=int_list(latents, "--latents"), sae_splits=csv_list(splits or None),
        sae_max_splits=max_splits, steer_judge=judge, max_new_tokens=max_new_tokens,
        batch_size=batch_size)
    if dry_run:
        return
    metrics = read_json(run_dir / "sae_steering" / "metrics.json")
    alphas_used = sorted({r["alpha"] for r in metrics.get("dose_response", [])})
    table = Table(title=f"SAE steering (judge: {metrics['judge']}"
                        + (", approximate" if metrics["judge_approximate"] else "") + ")")
    table.add_column("latent set", no_wrap=True)
    for a in alphas_used:
        table.add_column(f"a={a:g} RR/ORR")
    by_curve: dict[str, dict] = {}
    for r in metrics.get("dose_response", []):
        rr = "-" if r["rr"] is None else f"{r['rr']:.2f}"
        orr = "-" if r["orr"] is None else f"{r['orr']:.2f}"
        by_curve.setdefault(r["label"].removeprefix("vector/"), {})[r["alpha"]] = f"{rr}/{orr}"
    for label, cells in by_curve.items():
        table.add_row(label, *[cells.get(a, "") for a in alphas_used])
    console.print(table)
    cos = read_json(run_dir / "sae_steering" / "cosines.json")
    if cos.get("per_split"):
        cells = [f"{s} {v['cosine']:.2f}" for s, v in cos["per_split"].items()
                 if v["cosine"] is not None]
        console.print(f"cosine(top-{cos['top_k']} latent sum, direction): " + ", ".join(cells))
    comparison = write_comparison(run_dir)
    if comparison is None:
        console.print("no finished direction steering in this run yet: run `refusal-atlas steer "
                      f"--out {run_dir}`, then `refusal-atlas sae steer --out {run_dir}` again "
                      "for the side-by-side table")
    else:
        console.print(comparison_markdown(comparison))
