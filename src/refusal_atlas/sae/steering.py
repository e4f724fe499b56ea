"""SAE latent sets as steering vectors: which latents, which splits, and their cosines.

A latent set (the shared core, a split's top-K, a split's long tail, a user list) steers
along the sum of its latents' decoder rows (METHOD.md, "SAE steering"); the vectors go
through the same sweep engine as direction steering.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from ..sweeps import LayerVector, latent_sum_vector

STEER_SETS = ("core", "split_topk", "tail", "user")
CORE_NAME = "sae_core"
USER_NAME = "sae_user"


def latent_name(kind: str, split: str | None = None, k: int | None = None) -> str:
    """Bank / condition names: ``sae_core``, ``sae_user``, ``sae_top10:SPLIT``, ``sae_tail:SPLIT``
    (condition names cannot hold '/')."""
    if kind == "core":
        return CORE_NAME
    if kind == "user":
        return USER_NAME
    if kind == "split_topk":
        return f"sae_top{k}:{split}"
    if kind == "tail":
        return f"sae_tail:{split}"
    raise UserError(f"unknown SAE steering set {kind!r}; sets: {', '.join(STEER_SETS)}")


def choose_steer_splits(splits: Sequence[str], clusters: Sequence[Sequence[str]] | None,
                        cosine: Mapping[tuple[str, str], float] | None, n: int | None
                        ) -> list[str]:
    """``n`` splits spanning the clusters: round-robin over clusters (largest first), each
    cluster's most central member (highest mean cosine to its cluster mates) first.
    Without clusters: the first ``n`` splits; ``n=None``: all of them."""
    splits = list(splits)
    if n is None or n >= len(splits):
        return splits
    groups = [[s for s in c if s in splits] for c in (clusters or [])]
    groups = [g for g in groups if g]
    if not groups:
        return splits[:n]

    def centrality(s: str, group: Sequence[str]) -> float:
        mates = [t for t in group if t != s]
        if not mates or not cosine:
            return 0.0
        return sum(cosine.get((s, t), 0.0) for t in mates) / len(mates)

    ordered = [sorted(g, key=lambda s: (-centrality(s, g), splits.index(s)))
               for g in sorted(groups, key=lambda g: (-len(g), splits.index(g[0])))]
    out: list[str] = []
    while len(out) < n and any(ordered):
        for g in ordered:
            if g and len(out) < n:
                out.append(g.pop(0))
    rest = [s for s in splits if s not in out]
    return out + rest[:n - len(out)]


def build_sae_bank(sae, analysis, *, sets: Sequence[str], splits: Sequence[str], topk: int,
                   user_latents: Sequence[int] = (), normalize: bool, layer: int
                   ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """``({name: LayerVector}, vector descriptions, warnings)`` for the chosen latent sets.

    Args:
        sae: the SAE whose decoder rows are summed.
        analysis: its :class:`~refusal_atlas.sae.analysis.LatentAnalysis`.
        sets: latent sets to build, from :data:`STEER_SETS`.
        splits: splits whose ``split_topk`` / ``tail`` sets are built.
        topk: ``split_topk`` uses each split's top-``topk`` latents.
        user_latents: the ``user`` set.
        normalize: unit-normalise each latent sum (else METHOD's raw sum).
        layer: the ``resid_pre`` layer the vectors act at (the SAE's hook layer).

    Example:
        >>> bank, described, warnings = build_sae_bank(
        ...     sae, analysis, sets=["core"], splits=[], topk=10, normalize=True,
        ...     layer=sae.hook_layer)  # doctest: +SKIP
    """
    unknown = [s for s in sets if s not in STEER_SETS]
    if unknown:
        raise UserError(f"unknown sae.steer.sets {unknown}; sets: {', '.join(STEER_SETS)}")
    missing = [s for s in splits if s not in analysis.splits]
    if missing:
        raise UserError(f"sae.steer.splits {missing} have no SAE analysis; analysed splits: "
                        f"{', '.join(analysis.splits)}")
    if "user" in sets and not user_latents:
        raise UserError("sae.steer.sets has 'user' but sae.steer.latents is empty")
    bad = [j for j in user_latents if not 0 <= int(j) < sae.d_sae]
    if bad:
        raise UserError(f"sae.steer.latents {bad} are out of range for an SAE with {sae.d_sae} "
                        "latents")
    wanted: list[tuple[str, str, str | None, list[int]]] = []
    warnings: list[str] = []
    if "core" in sets:
        core = analysis.core_latents()
        if core:
            wanted.append((CORE_NAME, "core", None, core))
        else:
            warnings.append(f"the shared core at top-{analysis.core_k} is empty; no sae_core "
                            "condition (lower sae.analysis.core_min_splits or raise "
                            "sae.analysis.top_k)")
    if "split_topk" in sets:
        for split in splits:
            latents = analysis.top_latents(split, topk)
            if latents:
                wanted.append((latent_name("split_topk", split, topk), "split_topk", split,
                               latents))
            else:
                warnings.append(f"{split}: no latent with a positive score; no top-{topk} vector")
    if "tail" in sets:
        for split in splits:
            latents = analysis.tail_latents(split)
            if latents:
                wanted.append((latent_name("tail", split), "tail", split, latents))
            else:
                warnings.append(f"{split}: empty long tail at top-{analysis.core_k}")
    if user_latents:
        wanted.append((USER_NAME, "user", None, [int(j) for j in user_latents]))
    decoder = sae.W_dec.detach().float()
    bank: dict[str, Any] = {}
    described = []
    for name, kind, split, latents in wanted:
        raw = latent_sum_vector(decoder, latents, layer, source="sae")
        norm = raw.norm
        vector = raw.vector / norm if normalize and norm > 0 else raw.vector
        bank[name] = LayerVector(vector, layer, source="sae",
                                 meta={"latents": latents, "raw_norm": norm,
                                       "normalized": bool(normalize)})
        described.append({"name": name, "set": kind, "split": split, "latents": latents,
                          "n_latents": len(latents), "raw_norm": norm,
                          "normalized": bool(normalize), "layer": layer})
    if not bank:
        raise UserError("no SAE steering vector to steer with: " + "; ".join(warnings))
    return bank, described, warnings


def vector_cosines(sae, analysis, directions: Mapping[str, Any], topk: int,
                   vectors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cosine of each split's top-k latent sum with that split's direction, the core's with
    every direction and with their mean; and of each bank vector with every direction."""
    decoder = sae.W_dec.detach().float()

    def cos(a: torch.Tensor, b: torch.Tensor) -> float | None:
        na, nb = float(a.norm()), float(b.norm())
        return None if na == 0 or nb == 0 else float(a @ b / (na * nb))

    per_split = {}
    for split in analysis.splits:
        if split not in directions:
            continue
        latents = analysis.top_latents(split, topk)
        if not latents:
            continue
        v = decoder[latents].sum(0)
        d = directions[split].vector.float()
        per_split[split] = {
            "cosine": cos(v, d),
            "n_latents": len(latents),
            "best_single_latent": max((cos(decoder[j], d) or 0.0, j) for j in latents)[1],
            "best_single_cosine": max(cos(decoder[j], d) or 0.0 for j in latents),
        }
    out: dict[str, Any] = {
        "definition": f"cosine(sum of W_dec rows of the split's top-{topk} latents, the split's "
                      "difference-in-means direction)",
        "sae_layer": int(sae.hook_layer) if sae.hook_layer is not None else None,
        "direction_layers": sorted({int(d.layer) for d in directions.values()}),
        "top_k": topk, "per_split": per_split,
    }
    if directions:
        mean_dir = torch.stack([d.vector.float() for d in directions.values()]).mean(0)
        core = analysis.core_latents()
        if core:
            v = decoder[core].sum(0)
            out["core"] = {"n_latents": len(core), "with_mean_direction": cos(v, mean_dir),
                           "per_direction": {n: cos(v, d.vector.float())
                                             for n, d in directions.items()}}
    if vectors:
        out["bank"] = {name: {n: cos(sv.vector, d.vector.float()) for n, d in directions.items()}
                       for name, sv in vectors.items()}
    return out



__all__ = ["CORE_NAME", "STEER_SETS", "USER_NAME", "build_sae_bank", "choose_steer_splits",
           "latent_name", "vector_cosines"]
