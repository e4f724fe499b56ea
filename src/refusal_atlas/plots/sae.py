"""Figures of the SAE stages: training curve, latent popularity, overlaps, core scores, and
SAE latent steering against direction steering."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..sae.analysis import LatentAnalysis
from ..sae.comparison import curve_points, rates_by_curve
from .figures import new_figure, palette, save_png


def plot_training(history: Sequence[Mapping[str, float]], path: str | os.PathLike) -> Path | None:
    """Batch FVE and dead-latent share against the training step (None: no history)."""
    if not history:
        return None
    fig = new_figure((6.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h.get("fve", math.nan) for h in history], label="FVE (batch)")
    ax.plot(steps, [h.get("dead_fraction", math.nan) for h in history], label="dead share")
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("SAE training")
    return save_png(fig, path)


def plot_tradeoff_vs_directions(sae_metrics: Mapping[str, Any], dir_metrics: Mapping[str, Any],
                                path: str | os.PathLike) -> Path:
    """ORR against RR: every direction's curve (grey) and every SAE latent-set curve (colour)."""
    fig = new_figure((6.6, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    first = True
    for label, c in rates_by_curve(dir_metrics).items():
        pts = curve_points(c)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="0.7", lw=1,
                    label="directions" if first else None)
            first = False
    sae_curves = rates_by_curve(sae_metrics)
    for colour, (label, c) in zip(palette(len(sae_curves)), sae_curves.items()):
        pts = curve_points(c)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=colour, ms=4,
                    label=label.replace("vector/", ""))
    ax.set_xlabel("RR (refusal rate, harmful)")
    ax.set_ylabel("ORR (over-refusal rate, benign)")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_title("SAE latent steering vs direction steering")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_png(fig, path)


def plot_popularity(result: LatentAnalysis, path: str | os.PathLike) -> Path:
    """Number of latents by popularity (how many splits' top-K hold them), one bar set per K;
    the core threshold is marked."""
    n = len(result.splits)
    fig = new_figure((max(5.0, 0.45 * n + 3), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(result.ks)
    xs = list(range(1, n + 1))
    for i, k in enumerate(result.ks):
        counts = [0] * n
        for splits in result.popularity[k].values():
            counts[len(splits) - 1] += 1
        ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], counts, width, label=f"top-{k}")
    ax.axvline(result.core_min_splits - 0.5, color="black", ls="--", lw=1,
               label=f"core (>= {result.core_min_splits} splits)")
    ax.set_xticks(xs)
    ax.set_xlabel("popularity (number of splits whose top-K holds the latent)")
    ax.set_ylabel("latents")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_title("SAE latent popularity: a shared core and a long tail")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_overlap(result: LatentAnalysis, k: int, path: str | os.PathLike) -> Path:
    """Split x split |top-K(a) & top-K(b)| heatmap (diagonal: the size of each top-K)."""
    inter = result.intersections[k]
    names, counts = inter["names"], inter["counts"]
    n = len(names)
    fig = new_figure((0.55 * n + 3, 0.5 * n + 2.2))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(counts, cmap="viridis", vmin=0, vmax=max(1, k))
    for a in range(n):
        for b in range(n):
            ax.text(b, a, str(counts[a][b]), ha="center", va="center", fontsize=7,
                    color="white" if counts[a][b] < 0.6 * k else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_title(f"Shared latents between splits' top-{k}")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_png(fig, path)


def plot_core_scores(result: LatentAnalysis, path: str | os.PathLike, *, max_latents: int = 30
                     ) -> Path:
    """Scores (HR - BC firing share) of the core latents, plus each split's best tail latent
    (its highest-ranked latent in no other split's top-K), across splits."""
    k = result.core_k
    cols = result.core[k][:max_latents]
    tail_cols = []
    for split in result.splits:
        tail = [j for j in result.tail[k].get(split, []) if j in result.latent_info]
        if tail:
            tail_cols.append(tail[0])
    cols = cols + [j for j in tail_cols if j not in cols]
    fig = new_figure((max(5.0, 0.32 * len(cols) + 3.5), 0.4 * len(result.splits) + 2.2))
    ax = fig.add_subplot(1, 1, 1)
    if not cols:
        ax.text(0.5, 0.5, "no core or tail latents", ha="center", va="center")
        ax.set_axis_off()
        return save_png(fig, path)
    grid = [[result.latent_info[j]["score"].get(s, 0.0) for j in cols] for s in result.splits]
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    n_core = len([j for j in cols if j in result.core[k]])
    if 0 < n_core < len(cols):
        ax.axvline(n_core - 0.5, color="black", lw=1.5)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([str(j) for j in cols], rotation=90, fontsize=6)
    ax.set_yticks(range(len(result.splits)))
    ax.set_yticklabels(result.splits, fontsize=7)
    ax.set_xlabel(f"latent (left of the line: core at top-{k}; right: each split's best tail "
                  "latent)"
                  if 0 < n_core < len(cols) else "latent")
    ax.set_title("Latent score per split (HR firing share - BC firing share)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_png(fig, path)


__all__ = ["plot_core_scores", "plot_overlap", "plot_popularity", "plot_tradeoff_vs_directions",
           "plot_training"]
