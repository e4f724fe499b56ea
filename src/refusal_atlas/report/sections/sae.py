"""The ``sae`` section: the SAE, its core / tail latents and SAE steering."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..format import num
from .common import figure, named_count, pick, pick_rows, read_json_or_none, stage_artifact
from .steering import alphas_view, gap_view, no_gap_reason, pivot

__all__ = ["sae_section"]

EXAMPLE_KEYS = ("activation", "label", "split", "text", "prompt_id")


def sae_section(run_dir: Path, states: Mapping[str, dict], max_tail: int = 5) -> dict:
    """The SAE, its core / tail / shared latents and SAE steering (``steering`` key).

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
        max_tail: tail latents shown per split.
    """
    out: dict[str, Any] = {"available": False, **_sae_info(run_dir)}
    out.update(_latents(run_dir, states, max_tail))
    out["steering"] = _sae_steering(run_dir, states)
    out["sources"] = ["sae/sae.json", "sae_analysis/analysis.json"]
    return out


def _sae_info(run_dir: Path) -> dict:
    """The SAE itself (``sae/sae.json``) and its training curve; {} without one."""
    meta = read_json_or_none(run_dir / "sae" / "sae.json")
    if not isinstance(meta, dict):
        return {}
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), Mapping) else {}
    sae = {
        "source": meta.get("source"), "spec": meta.get("spec"),
        "hook_layer": meta.get("hook_layer"), "d_in": meta.get("d_in"),
        "d_sae": meta.get("d_sae"), "architecture": meta.get("architecture"),
        "k": meta.get("k"), "note": meta.get("note"),
        "metrics": [{"set": k, **pick(v, ("fve", "l0", "dead_fraction", "n"))}
                    for k, v in metrics.items() if isinstance(v, dict)],
        "train_seconds": (meta.get("train") or {}).get("seconds"),
    }
    return {"sae": sae, "sae_figure": figure(run_dir, "sae/training.png", "SAE training curve")}


def _latents(run_dir: Path, states: Mapping[str, dict], max_tail: int) -> dict:
    """Core, tail and shared latents (``sae_analysis/analysis.json``), or the reason why not."""
    a, reason = stage_artifact(run_dir, states, "sae_analysis/analysis.json", "sae", "sae_analysis")
    if a is None:
        return {"reason": reason}
    ks = [int(k) for k in a.get("ks") or []]
    core_k = int(a.get("core_k") or (max(ks) if ks else 0))
    ck = str(core_k)
    s = a.get("summary") or {}
    info = a.get("latent_info") or {}
    examples = a.get("examples") or {}
    splits = list(a.get("splits") or [])
    pop = (a.get("popularity") or {}).get(ck) or {}
    top_by_split = (a.get("top") or {}).get(ck) or {}
    entry_of = {(sp, str(e.get("latent"))): e for sp, lst in top_by_split.items() for e in lst}

    def latent_row(j: Any, split: str | None = None) -> dict:
        key = str(j)
        li = info.get(key) or {}
        scores = li.get("score") or {}
        vals = [num(v) for v in scores.values() if num(v) is not None]
        e = entry_of.get((split, key)) if split else None
        return {"latent": int(j), "splits": pop.get(key) or [],
                "popularity": len(pop.get(key) or []),
                "mean_score": (sum(vals) / len(vals)) if vals else None,
                "score": (e or {}).get("score"), "hr_frac": (e or {}).get("hr_frac"),
                "bc_frac": (e or {}).get("bc_frac"),
                "neuronpedia": li.get("neuronpedia"),
                "examples": pick_rows(examples.get(key), EXAMPLE_KEYS)}

    core = [latent_row(j) for j in (a.get("core") or {}).get(ck) or []]
    tails = []
    for split in splits:
        lat = ((a.get("tail") or {}).get(ck) or {}).get(split) or []
        tails.append({"split": split, "n": len(lat),
                      "latents": [latent_row(j, split) for j in lat[:max_tail]]})
    per_k = [{"k": k, "core": (s.get("core_size") or {}).get(str(k)),
              "tail": (s.get("tail_size") or {}).get(str(k)),
              "shared": (s.get("shared_size") or {}).get(str(k)),
              "distinct": (s.get("distinct_top_latents") or {}).get(str(k))} for k in ks]
    figs = [f for f in (
        figure(run_dir, "sae_analysis/popularity.png", "latents by popularity (number of "
                                                       "splits whose top-K holds them)"),
        figure(run_dir, "sae_analysis/core_scores.png", "scores of the core latents and each "
                                                        "split's best tail latent"),
        figure(run_dir, f"sae_analysis/overlap_top{core_k}.png",
               f"shared latents between the splits' top-{core_k}"),
    ) if f]
    return {
        "available": True, "ks": ks, "core_k": core_k,
        "core_reason": _core_reason(splits, a.get("core_min_splits")),
        "core_min_splits": a.get("core_min_splits"), "splits": splits,
        "n_hr": a.get("n_hr"), "n_bc": a.get("n_bc"), "per_k": per_k,
        "core_size": (s.get("core_size") or {}).get(ck),
        "tail_size": (s.get("tail_size") or {}).get(ck),
        "shared_size": (s.get("shared_size") or {}).get(ck),
        "distinct": (s.get("distinct_top_latents") or {}).get(ck),
        "core": core, "tails": tails, "max_tail": max_tail,
        "all_splits": ((a.get("intersections") or {}).get(ck) or {}).get("all_splits"),
        "skipped_splits": (a.get("params") or {}).get("skipped_splits") or [],
        "figures": figs,
    }


def _core_reason(splits: list[str], min_splits: Any) -> str | None:
    """Why "shared core vs long tail" cannot be told apart in this run (None when it can): a
    core latent must be shared by at least two splits."""
    if len(splits) < 2:
        return (f"a core shared between splits needs at least 2 splits; this run has "
                f"{named_count(splits)}")
    m = num(min_splits)
    if m is not None and m < 2:
        return (f"with {len(splits)} splits the core threshold is {int(m)} split, so every latent "
                "counts as core (at least 3 splits, or sae.analysis.core_min_splits=2, give a "
                "shared core)")
    return None


def _sae_steering(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """SAE-latent steering beside direction steering (``sae_steering/*.json``)."""
    sm, reason = stage_artifact(run_dir, states, "sae_steering/metrics.json")
    if sm is None:
        return {"available": False, "reason": reason}
    vectors = read_json_or_none(run_dir / "sae_steering" / "vectors.json") or {}
    cosines = read_json_or_none(run_dir / "sae_steering" / "cosines.json") or {}
    comparison = read_json_or_none(run_dir / "sae_steering" / "comparison.json")
    comp = None
    if isinstance(comparison, dict):
        cols: list[str] = ["directions_mean"]
        for r in comparison.get("rows") or []:
            for key in r:
                if key not in ("alpha",) and key not in cols:
                    cols.append(key)
        comp = {"columns": cols,
                "rows": [r for r in comparison.get("rows") or [] if isinstance(r, Mapping)],
                "gaps": [{"label": k, **pick(v, ("own_direction", "max_over_directions",
                                                 "mean_over_directions"))}
                         for k, v in (comparison.get("gaps") or {}).items()],
                "directions_gap": pick(comparison.get("directions_tradeoff_gap"),
                                       ("value", "mean_over_pairs")),
                "same_judge": comparison.get("same_judge"),
                "alpha_mode": comparison.get("sae_alpha_mode")}
    table = pivot(sm.get("dose_response") or [])
    gap = gap_view(sm.get("tradeoff_gap"))
    return {
        "available": True, "judge": sm.get("judge"), "alphas": alphas_view(sm.get("alphas")),
        "table": table, "gap": gap, "gap_reason": no_gap_reason(gap, table, "SAE vectors"),
        "vectors": [{k: v.get(k) for k in ("name", "set", "split", "n_latents", "raw_norm",
                                              "normalized", "layer", "latents")}
                    for v in vectors.get("vectors") or []],
        "splits_chosen_by": vectors.get("splits_chosen_by"),
        "warnings": vectors.get("warnings") or [],
        "cosines": [{"split": k, **pick(v, ("cosine", "best_single_latent", "best_single_cosine"))}
                    for k, v in (cosines.get("per_split") or {}).items()],
        "core_cosine": pick(cosines["core"], ("n_latents", "with_mean_direction"))
        if isinstance(cosines.get("core"), Mapping) else None,
        "comparison": comp,
        "figures": [f for f in (
            figure(run_dir, "sae_steering/tradeoff_vs_directions.png",
                   "ORR against RR: directions (grey) and SAE latent sets (colour)"),
            figure(run_dir, "sae_steering/dose_response.png",
                   "SAE steering: RR (solid) and ORR (dashed) against alpha"),
            figure(run_dir, "sae_steering/tradeoff.png", "SAE steering: ORR against RR"),
        ) if f],
        "sources": ["sae_steering/metrics.json", "sae_steering/comparison.json",
                    "sae_steering/vectors.json", "sae_steering/cosines.json"],
    }
