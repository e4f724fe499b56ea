"""The building blocks of the latent analysis: per-split scores, rankings, popularity,
core and tail, overlaps and top-activating rows (definitions in :mod:`.analysis`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError


def firing_fraction(latents: torch.Tensor) -> torch.Tensor:
    """Share of rows where each latent fires (``f > 0``): ``[n, d_sae]`` -> ``[d_sae]``."""
    if latents.ndim != 2:
        raise UserError(f"latent activations must be [n, d_sae], got {list(latents.shape)}")
    if latents.shape[0] == 0:
        return torch.zeros(latents.shape[1], dtype=torch.float64)
    return (latents > 0).double().mean(dim=0)


@dataclass
class SplitScores:
    """Per-latent scores of one split."""

    split: str
    score: torch.Tensor
    hr_frac: torch.Tensor
    bc_frac: torch.Tensor
    n_hr: int
    n_bc: int


def latent_scores(hr: torch.Tensor, bc: torch.Tensor, split: str = "") -> SplitScores:
    """Scores from the split's HR / BC latent activations (``[n_hr, d_sae]``, ``[n_bc, d_sae]``)."""
    if hr.ndim != 2 or bc.ndim != 2 or hr.shape[1] != bc.shape[1]:
        raise UserError(f"HR and BC latent activations must be [n, d_sae] with the same d_sae, "
                        f"got {list(hr.shape)} and {list(bc.shape)}")
    if hr.shape[0] == 0 or bc.shape[0] == 0:
        raise UserError(f"split {split!r} needs at least one HR and one BC prompt for latent "
                        f"scores (has {hr.shape[0]} HR, {bc.shape[0]} BC)")
    hr_frac, bc_frac = firing_fraction(hr), firing_fraction(bc)
    return SplitScores(split, hr_frac - bc_frac, hr_frac, bc_frac, int(hr.shape[0]),
                       int(bc.shape[0]))


def rank_latents(score: torch.Tensor, hr_frac: torch.Tensor, k: int | None = None, *,
                 positive_only: bool = True) -> list[int]:
    """Latent indices by score (desc), then HR firing share (desc), then index (asc).

    ``k`` keeps the first k; ``positive_only`` drops latents with score <= 0.
    """
    score = score.double()
    hr_frac = hr_frac.double()
    idx = torch.arange(score.numel())
    if positive_only:
        keep = score > 0
        idx, score, hr_frac = idx[keep], score[keep], hr_frac[keep]
    # lexicographic sort with stable sorts, least significant key first
    order = torch.argsort(idx, stable=True)
    order = order[torch.argsort(-hr_frac[order], stable=True)]
    order = order[torch.argsort(-score[order], stable=True)]
    ranked = idx[order].tolist()
    return ranked if k is None else ranked[:k]


def popularity(top_lists: Mapping[str, Sequence[int]]) -> dict[int, list[str]]:
    """``{latent: [splits whose list holds it]}`` (split order as given), most popular first,
    ties by latent index."""
    holders: dict[int, list[str]] = {}
    for split, latents in top_lists.items():
        for j in dict.fromkeys(int(x) for x in latents):
            holders.setdefault(j, []).append(split)
    return dict(sorted(holders.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def default_core_min_splits(n_splits: int) -> int:
    """Half the splits, rounded up (at least 1)."""
    return max(1, math.ceil(n_splits / 2))


def core_and_tail(top_lists: Mapping[str, Sequence[int]], min_splits: int
                  ) -> tuple[list[int], dict[str, list[int]], list[int]]:
    """(core, tail per split, shared-but-not-core) for one K.

    Core: popularity >= ``min_splits`` (most popular first, ties by index). Tail: popularity
    1, listed under its split in that split's top-K order. The rest (2 <= popularity <
    min_splits) is the third element.
    """
    if min_splits < 1:
        raise UserError(f"core_min_splits must be at least 1, got {min_splits}")
    pop = popularity(top_lists)
    core = [j for j, s in pop.items() if len(s) >= min_splits]
    tail = {split: [int(j) for j in latents if len(pop[int(j)]) == 1]
            for split, latents in top_lists.items()}
    middle = [j for j, s in pop.items() if 1 < len(s) < min_splits]
    if min_splits == 1:  # everything is core; the tail is then also "in one split only"
        middle = []
    return core, tail, middle


def intersections(top_lists: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Pairwise overlaps, Jaccard, the all-split intersection and UpSet-style groups."""
    names = list(top_lists)
    sets = [set(int(j) for j in top_lists[n]) for n in names]
    n = len(names)
    counts = [[len(sets[a] & sets[b]) for b in range(n)] for a in range(n)]
    jaccard = [[(len(sets[a] & sets[b]) / len(sets[a] | sets[b])) if sets[a] | sets[b] else 0.0
                for b in range(n)] for a in range(n)]
    common = sorted(set.intersection(*sets)) if sets else []
    groups: dict[tuple[str, ...], list[int]] = {}
    for j, splits in popularity(top_lists).items():
        groups.setdefault(tuple(splits), []).append(j)
    by_set = [{"splits": list(k), "n_splits": len(k), "latents": sorted(v), "n": len(v)}
              for k, v in groups.items()]
    by_set.sort(key=lambda g: (-g["n_splits"], -g["n"], g["splits"]))
    return {"names": names, "counts": counts, "jaccard": jaccard, "all_splits": common,
            "by_split_set": by_set}


def top_activating(latents: torch.Tensor, latent_ids: Sequence[int], n: int = 5
                   ) -> dict[int, list[tuple[int, float]]]:
    """For each latent id, the ``n`` rows (prompt indices) with the highest activation
    (> 0 only), highest first, ties by row index: ``{latent: [(row, activation)]}``."""
    out: dict[int, list[tuple[int, float]]] = {}
    if not latent_ids:
        return out
    cols = latents[:, list(latent_ids)].double()
    rows = torch.arange(cols.shape[0])
    for c, j in enumerate(latent_ids):
        values = cols[:, c]
        order = torch.argsort(rows, stable=True)
        order = order[torch.argsort(-values[order], stable=True)]
        picked = [(int(r), float(values[r])) for r in order[:n].tolist() if values[r] > 0]
        out[int(j)] = picked
    return out


__all__ = ["SplitScores", "core_and_tail", "default_core_min_splits", "firing_fraction",
           "intersections", "latent_scores", "popularity", "rank_latents", "top_activating"]
