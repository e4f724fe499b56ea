"""Which SAE latents carry refusal in each split: scores, top-K, popularity, core and tail.

Pure functions over SAE latent activations ``f`` [n_prompts, d_sae] at the analysis
position (-2 by default) of the run's prompts (METHOD.md, "SAE analysis"):

* **fires** = ``f > 0``.
* **score** of latent j for a split = (share of the split's HR prompts on which j fires) -
  (share of the split's BC prompts on which j fires). HR = every HR prompt of the split the
  run labelled (not only the training pool); BC = every BC prompt of the split's benign
  pool.
* **top-K** of a split = the K latents with the highest score, among latents with a
  positive score (a latent firing no more on HR than on BC carries no refusal signal, so
  a split may have fewer than K). Ties are broken by the HR firing share (higher first),
  then by latent index (lower first): the order is fully deterministic.
* **popularity** of a latent (for one K) = the number of splits whose top-K contains it.
* **shared core** = latents with popularity >= ``core_min_splits`` (default: half the
  splits, rounded up); **long tail** = latents with popularity exactly 1 (each belongs to
  one split). Latents in between are "shared" (reported, neither core nor tail).
* **intersections**: pairwise |top-K(a) & top-K(b)| and Jaccard, the latents in every
  split's top-K, and the UpSet-style grouping of latents by the exact set of splits whose
  top-K holds them.
* **top-activating prompts** of a latent: the prompts of the whole pool with the highest
  activation (any label, any split), for a human to label the latent.

:func:`analyze_latents` puts it all in a :class:`LatentAnalysis` (JSON-ready) from the
building blocks in :mod:`.scores`; the figures are in :mod:`refusal_atlas.plots.sae`, the
text for people in :mod:`.describe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from .scores import (
    SplitScores,
    core_and_tail,
    default_core_min_splits,
    intersections,
    latent_scores,
    popularity,
    rank_latents,
    top_activating,
)

FORMAT = "refusal-atlas/sae-analysis"
FORMAT_VERSION = 1

DEFINITIONS = {
    "fires": "latent activation f > 0 at the analysis position",
    "score": "share of the split's HR prompts where the latent fires minus the share of the "
             "split's benign-pool BC prompts where it fires",
    "top_k": "the K highest-scoring latents with score > 0; ties: higher HR firing share, then "
             "lower latent index",
    "popularity": "number of splits whose top-K contains the latent",
    "core": "latents with popularity >= core_min_splits",
    "tail": "latents with popularity exactly 1 (in one split's top-K only)",
}


@dataclass
class PromptInfo:
    """What the analysis knows about one prompt of the pool."""

    id: str
    split: str
    label: str | None
    text: str


@dataclass
class LatentAnalysis:
    """The SAE latent analysis of one run (see the module docstring); ``to_dict`` is JSON."""

    splits: list[str]
    ks: list[int]
    core_k: int
    core_min_splits: int
    n_hr: dict[str, int]
    n_bc: dict[str, int]
    top: dict[int, dict[str, list[dict[str, Any]]]]
    """``{K: {split: [{latent, score, hr_frac, bc_frac}, ...]}}``"""
    popularity: dict[int, dict[int, list[str]]]
    """``{K: {latent: [splits]}}`` (most popular first)."""
    core: dict[int, list[int]]
    tail: dict[int, dict[str, list[int]]]
    shared: dict[int, list[int]]
    """Popularity between 2 and core_min_splits - 1."""
    intersections: dict[int, dict[str, Any]]
    examples: dict[int, list[dict[str, Any]]]
    """``{latent: [{prompt_id, split, label, activation, text}]}`` for labelled latents."""
    latent_info: dict[int, dict[str, Any]] = field(default_factory=dict)
    """``{latent: {score per split, popularity per K, neuronpedia url}}`` for reported latents."""
    sae: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    # ---- convenience
    def top_latents(self, split: str, k: int) -> list[int]:
        """The top-k latents of ``split`` (k <= the largest analysed K)."""
        big = max(self.ks)
        if k > big:
            raise UserError(f"top-{k} was not analysed (largest K: {big})")
        return [r["latent"] for r in self.top[big][split][:k]]

    def core_latents(self, k: int | None = None) -> list[int]:
        return list(self.core[self.core_k if k is None else k])

    def tail_latents(self, split: str, k: int | None = None) -> list[int]:
        return list(self.tail[self.core_k if k is None else k].get(split, []))

    def summary(self) -> dict[str, Any]:
        k = self.core_k
        return {
            "splits": len(self.splits), "ks": self.ks, "core_k": k,
            "core_min_splits": self.core_min_splits,
            "core_size": {str(kk): len(self.core[kk]) for kk in self.ks},
            "tail_size": {str(kk): sum(len(v) for v in self.tail[kk].values()) for kk in self.ks},
            "shared_size": {str(kk): len(self.shared[kk]) for kk in self.ks},
            "distinct_top_latents": {str(kk): len(self.popularity[kk]) for kk in self.ks},
            "core": self.core[k][:20],
        }

    def to_dict(self) -> dict[str, Any]:
        def skeys(d: Mapping) -> dict:
            return {str(key): value for key, value in d.items()}

        return {
            "format": FORMAT, "version": FORMAT_VERSION, "definitions": DEFINITIONS,
            "splits": self.splits, "ks": self.ks, "core_k": self.core_k,
            "core_min_splits": self.core_min_splits, "n_hr": self.n_hr, "n_bc": self.n_bc,
            "summary": self.summary(),
            "top": skeys(self.top),
            "popularity": {str(k): skeys(v) for k, v in self.popularity.items()},
            "core": skeys(self.core),
            "tail": skeys(self.tail),
            "shared": skeys(self.shared),
            "intersections": skeys(self.intersections),
            "examples": skeys(self.examples),
            "latent_info": skeys(self.latent_info),
            "sae": self.sae, "params": self.params,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatentAnalysis":
        if d.get("format") != FORMAT:
            raise UserError(f"not a refusal-atlas SAE analysis (format={d.get('format')!r})")

        def ikeys(m: Mapping) -> dict:
            return {int(key): value for key, value in m.items()}

        return cls(
            splits=list(d["splits"]), ks=[int(k) for k in d["ks"]], core_k=int(d["core_k"]),
            core_min_splits=int(d["core_min_splits"]), n_hr=dict(d["n_hr"]),
            n_bc=dict(d["n_bc"]), top=ikeys(d["top"]),
            popularity={int(k): ikeys(v) for k, v in d["popularity"].items()},
            core=ikeys(d["core"]), tail=ikeys(d["tail"]), shared=ikeys(d["shared"]),
            intersections=ikeys(d["intersections"]), examples=ikeys(d["examples"]),
            latent_info=ikeys(d.get("latent_info", {})), sae=dict(d.get("sae", {})),
            params=dict(d.get("params", {})))


def analyze_latents(
    latents: torch.Tensor,
    prompts: Sequence[PromptInfo],
    split_rows: Mapping[str, tuple[Sequence[int], Sequence[int]]],
    *,
    ks: Sequence[int] = (10, 50),
    core_min_splits: int | None = None,
    core_k: int | None = None,
    examples_k: int = 10,
    examples_n: int = 5,
    examples_tail: int = 3,
    neuronpedia_url=None,
    text_chars: int = 300,
) -> LatentAnalysis:
    """The full analysis.

    Args:
        latents: ``[n_prompts, d_sae]`` SAE activations at the analysis position, one row
            per entry of ``prompts`` (the whole pool: used for top-activating prompts).
        prompts: id, split, label (HR/HC/BR/BC or None) and text of each row.
        split_rows: ``{split: (HR row indices, BC row indices)}`` in the order to report.
        ks: the K values (each gets top lists, popularity, core, tail, intersections).
        core_min_splits: core threshold (None: half the splits, rounded up).
        core_k: the K whose core/tail is "the" core/tail (None: the largest K).
        examples_k: latents in any split's top-``examples_k``, every core latent and each
            split's first ``examples_tail`` tail latents (at ``core_k``) get their
            ``examples_n`` top-activating prompts.
        neuronpedia_url: optional ``latent -> url | None`` (Gemma Scope dashboards).
    """
    if latents.ndim != 2 or latents.shape[0] != len(prompts):
        raise UserError(f"latent activations {list(latents.shape)} do not match "
                        f"{len(prompts)} prompts")
    if not split_rows:
        raise UserError("no split has HR and BC prompts to score SAE latents on")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise UserError(f"top-K values must be positive integers, got {list(ks)}")
    n_splits = len(split_rows)
    min_splits = (default_core_min_splits(n_splits) if core_min_splits is None
                  else int(core_min_splits))
    if not 1 <= min_splits:
        raise UserError(f"core_min_splits must be at least 1, got {min_splits}")
    if min_splits > n_splits:
        raise UserError(f"core_min_splits={min_splits} exceeds the number of splits ({n_splits})")
    core_k = max(ks) if core_k is None else int(core_k)
    if core_k not in ks:
        raise UserError(f"core_k={core_k} is not one of the analysed K values {ks}")
    big = max(ks)

    scores: dict[str, SplitScores] = {}
    ranked: dict[str, list[int]] = {}
    for split, (hr_rows, bc_rows) in split_rows.items():
        s = latent_scores(latents[list(hr_rows)], latents[list(bc_rows)], split)
        scores[split] = s
        ranked[split] = rank_latents(s.score, s.hr_frac, big)

    def entry(split: str, j: int) -> dict[str, Any]:
        s = scores[split]
        return {"latent": int(j), "score": float(s.score[j]), "hr_frac": float(s.hr_frac[j]),
                "bc_frac": float(s.bc_frac[j])}

    top: dict[int, dict[str, list[dict[str, Any]]]] = {}
    pops: dict[int, dict[int, list[str]]] = {}
    cores: dict[int, list[int]] = {}
    tails: dict[int, dict[str, list[int]]] = {}
    shared: dict[int, list[int]] = {}
    inter: dict[int, dict[str, Any]] = {}
    for k in ks:
        lists = {split: ranked[split][:k] for split in split_rows}
        top[k] = {split: [entry(split, j) for j in lists[split]] for split in split_rows}
        pops[k] = popularity(lists)
        cores[k], tails[k], shared[k] = core_and_tail(lists, min_splits)
        inter[k] = intersections(lists)

    # core order: popularity, then mean score over splits, then index
    for k in ks:
        cores[k].sort(key=lambda j: (-len(pops[k][j]),
                                     -sum(float(scores[s].score[j]) for s in split_rows),
                                     j))

    labelled = list(dict.fromkeys(
        [j for split in split_rows for j in ranked[split][:examples_k]] + cores[core_k]
        + [j for split in split_rows for j in tails[core_k][split][:examples_tail]]))
    tops = top_activating(latents, labelled, examples_n)
    examples: dict[int, list[dict[str, Any]]] = {}
    for j, picked in tops.items():
        examples[j] = [{"prompt_id": prompts[r].id, "split": prompts[r].split,
                        "label": prompts[r].label, "activation": round(a, 4),
                        "text": _clip(prompts[r].text, text_chars)} for r, a in picked]

    info: dict[int, dict[str, Any]] = {}
    for j in labelled:
        info[j] = {
            "popularity": {str(k): len(pops[k].get(j, [])) for k in ks},
            "splits": {str(k): pops[k].get(j, []) for k in ks},
            "score": {s: round(float(scores[s].score[j]), 4) for s in split_rows},
            "hr_frac": {s: round(float(scores[s].hr_frac[j]), 4) for s in split_rows},
            "bc_frac": {s: round(float(scores[s].bc_frac[j]), 4) for s in split_rows},
            "fires_on_pool": round(float((latents[:, j] > 0).double().mean()), 4),
        }
        url = neuronpedia_url(j) if neuronpedia_url is not None else None
        if url:
            info[j]["neuronpedia"] = url

    return LatentAnalysis(
        splits=list(split_rows), ks=ks, core_k=core_k, core_min_splits=min_splits,
        n_hr={s: scores[s].n_hr for s in split_rows}, n_bc={s: scores[s].n_bc for s in split_rows},
        top=top, popularity=pops, core=cores, tail=tails, shared=shared, intersections=inter,
        examples=examples, latent_info=info,
        params={"ks": ks, "core_k": core_k, "core_min_splits": min_splits,
                "examples_k": examples_k, "examples_n": examples_n,
                "examples_tail": examples_tail,
                "n_prompts": len(prompts), "d_sae": int(latents.shape[1])})


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@torch.no_grad()
def encode_rows(sae, acts: torch.Tensor, *, chunk: int = 1024) -> torch.Tensor:
    """SAE latents (float32, CPU) for ``acts`` [N, d_in], in chunks."""
    out = [sae.encode(acts[i:i + chunk]).float().cpu() for i in range(0, acts.shape[0], chunk)]
    return torch.cat(out) if out else torch.empty(0, sae.d_sae)



__all__ = ["DEFINITIONS", "LatentAnalysis", "PromptInfo", "analyze_latents", "encode_rows"]
