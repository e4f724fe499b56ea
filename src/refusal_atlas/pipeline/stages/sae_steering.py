"""``sae_steering``: steer with sums of SAE decoder rows through the shared sweep runner.

Adds ``alpha * (sum of decoder rows)`` of latent sets (the shared core, each chosen split's
top-K, optionally their tails or a user list) at the SAE's hook layer, every position; the
cosine of each split's latent vector with its direction; and a side-by-side table with
direction steering (``comparison.json`` / ``.md``) whenever the steering stage has finished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...artifacts import read_json, write_json
from ...errors import UserError
from ...geometry import load_geometry
from ...metrics import compact_summary
from ...plots.sae import plot_tradeoff_vs_directions
from ...progress import console, warn
from ...sae.comparison import compare_with_directions, comparison_markdown
from ...sae.steering import STEER_SETS, build_sae_bank, choose_steer_splits, vector_cosines
from ...sweeps import resolve_alphas, select_directions, steering_grid
from ..inputs import SAE_JSON, run_analysis, run_directions, run_sae
from ..stage import Stage
from .sweep import check_sweep_inputs, prompts_setting, run_sweep_stage

COMPARISON_JSON = "comparison.json"


def _geometry_clusters(ctx) -> tuple[list[list[str]] | None, dict | None]:
    folder = ctx.stage_dir("geometry")
    if not (folder / "geometry.json").exists():
        return None, None
    geometry = load_geometry(folder)
    clusters = geometry.clustering.clusters(k=2) if len(geometry.names) > 2 else []
    names = geometry.names
    cosine = {(a, b): float(geometry.cosine[i][j]) for i, a in enumerate(names)
              for j, b in enumerate(names)}
    return clusters, cosine


def check(ctx) -> None:
    """Steered splits, sets and latents are known, against the finished SAE stages."""
    check_sweep_inputs(ctx)
    steer = ctx.config.sae.steer
    unknown = [s for s in steer.sets if s not in STEER_SETS]
    if unknown:
        raise UserError(f"unknown sae.steer.sets {unknown}; sets: {', '.join(STEER_SETS)}")
    if ctx.run.done_marker("sae_analysis") and steer.splits is not None:
        analysed = run_analysis(ctx.run.root).splits
        missing = [s for s in steer.splits if s not in analysed]
        if missing:
            raise UserError(f"sae.steer.splits {missing} have no SAE analysis; analysed "
                            f"splits: {', '.join(analysed)}")
    meta = read_json(ctx.stage_dir("sae") / SAE_JSON) if ctx.run.done_marker("sae") else None
    if meta and steer.latents:
        bad = [j for j in steer.latents if not 0 <= int(j) < int(meta["d_sae"])]
        if bad:
            raise UserError(f"sae.steer.latents {bad} are out of range for an SAE with "
                            f"{meta['d_sae']} latents")


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg, st = ctx.config.sae.steer, ctx.config.steering
    sae, meta = run_sae(ctx.run.root)
    analysis = run_analysis(ctx.run.root)
    all_directions = run_directions(ctx)
    directions = select_directions(all_directions, st.directions)
    layer = int(meta["hook_layer"])

    if cfg.splits is not None:
        splits = list(dict.fromkeys(cfg.splits))
        how = "sae.steer_splits"
    else:
        clusters, cosine = _geometry_clusters(ctx)
        splits = choose_steer_splits(analysis.splits, clusters, cosine, cfg.max_splits)
        how = ("spanning the geometry's two clusters" if clusters else "the first splits") \
            if cfg.max_splits is not None and cfg.max_splits < len(analysis.splits) \
            else "all splits"
    sets = list(dict.fromkeys(cfg.sets))
    alphas, alpha_info = resolve_alphas(cfg.alphas, directions,
                                        reference_gap=st.auto_reference_gap,
                                        auto_alphas=cfg.auto_alphas)
    normalize = cfg.normalize if cfg.normalize is not None else cfg.alphas == "auto"
    alpha_info["vector_norm"] = "unit" if normalize else "raw sum of decoder rows"
    bank, described, warnings = build_sae_bank(
        sae, analysis, sets=sets, splits=splits, topk=cfg.topk,
        user_latents=cfg.latents, normalize=normalize, layer=layer)
    warn(warnings)
    for d in described:
        d["method_alphas"] = {str(a): (a / d["raw_norm"] if normalize and d["raw_norm"] else a)
                              for a in alphas}
    cosines = vector_cosines(sae, analysis, all_directions, cfg.topk, bank)
    write_json(out_dir / "vectors.json", {"splits": splits, "splits_chosen_by": how,
                                          "sets": sets, "vectors": described,
                                          "warnings": warnings,
                                          "method_alphas_definition":
                                              "alpha on METHOD's raw latent sum that adds the "
                                              "same vector (alpha / raw_norm when normalised)"})
    write_json(out_dir / "cosines.json", cosines)

    conditions = steering_grid(list(bank), alphas, kind="vector")
    summary = run_sweep_stage(ctx, out_dir, bank, conditions, alpha_info=alpha_info,
                              description="SAE steering",
                              record={"vectors": list(bank), "layer": layer})
    comparison = write_comparison(ctx.run.root)
    compact = compact_summary(summary)
    compact["vectors"] = {d["name"]: d["n_latents"] for d in described}
    compact["cosine_topk_vs_direction"] = {s: v["cosine"] for s, v in cosines["per_split"].items()}
    if comparison is not None:
        console.print(comparison_markdown(comparison, compact=True))
    return compact


def write_comparison(run_dir: str | Path) -> dict[str, Any] | None:
    """(Re)write ``sae_steering/comparison.json``, ``.md`` and ``tradeoff_vs_directions.png``
    from the two stages' metrics; None (and nothing written) until both exist."""
    run_dir = Path(run_dir)
    sae_dir = run_dir / "sae_steering"
    steer_metrics = run_dir / "steering" / "metrics.json"
    if not (sae_dir / "metrics.json").exists() or not steer_metrics.exists() or \
            not (run_dir / "steering" / "_done.json").exists():
        return None
    sae_m = read_json(sae_dir / "metrics.json")
    dir_m = read_json(steer_metrics)
    vectors_file = sae_dir / "vectors.json"
    vectors = read_json(vectors_file)["vectors"] if vectors_file.exists() else []
    comparison = compare_with_directions(sae_m, dir_m, vectors)
    write_json(sae_dir / COMPARISON_JSON, comparison)
    (sae_dir / "comparison.md").write_text(comparison_markdown(comparison), encoding="utf-8")
    plot_tradeoff_vs_directions(sae_m, dir_m, sae_dir / "tradeoff_vs_directions.png")
    return comparison


def settings(cfg) -> dict:
    s, st = cfg.sae.steer, cfg.steering
    # the flat keys of the time before sae.steer was a section: run folders stay done
    return {"steer_alphas": s.alphas, "steer_auto_alphas": s.auto_alphas,
            "steer_normalize": s.normalize, "steer_sets": s.sets,
            "steer_topk": s.topk, "steer_splits": s.splits,
            "steer_max_splits": s.max_splits, "steer_latents": s.latents,
            "auto_reference_gap": st.auto_reference_gap, "directions": st.directions,
            "max_new_tokens": st.max_new_tokens, "judge": st.judge,
            "judge_options": st.judge_options, **prompts_setting(st.prompts)}


STAGE = Stage("sae_steering",
              ("sae_analysis", "sae", "directions", "geometry", "test_set", "labels"),
              settings, run,
              "steer with sums of SAE decoder rows (core, per-split top-K); RR / ORR",
              enabled=lambda c: bool(c.sae.enabled), disabled_by="sae.enabled = false",
              check=check, outputs=("vectors.json", "cosines.json", "conditions.json", "results.jsonl", "metrics.json"))
