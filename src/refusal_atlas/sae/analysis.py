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

:func:`analyze_latents` puts it all in a :class:`LatentAnalysis` (JSON-ready); the
figures are :func:`plot_popularity`, :func:`plot_overlap` and :func:`plot_core_scores`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from ..figures import new_figure, save_png

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


# --------------------------------------------------------------------------- scores
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


# --------------------------------------------------------------------------- the result
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


# --------------------------------------------------------------------------- Markdown
def latents_markdown(result: LatentAnalysis, *, max_core: int = 20, max_tail: int = 3) -> str:
    """A human-readable sheet for labelling: core latents, then each split's top tail latents,
    each with its scores and top-activating prompts."""
    k = result.core_k
    lines = [f"# SAE latents carrying refusal (top-{k}, core = in >= {result.core_min_splits} "
             f"of {len(result.splits)} splits)", ""]
    s = result.summary()
    lines.append(f"core: {s['core_size'][str(k)]} latents; tail: {s['tail_size'][str(k)]}; "
                 f"shared (2..{result.core_min_splits - 1} splits): {s['shared_size'][str(k)]}")
    lines.append("")

    def block(j: int, heading: str) -> None:
        info = result.latent_info.get(j, {})
        lines.append(f"## {heading} latent {j}")
        if info.get("neuronpedia"):
            lines.append(f"[Neuronpedia]({info['neuronpedia']})")
        pops = result.popularity[k].get(j, [])
        lines.append(f"in the top-{k} of {len(pops)} splits: {', '.join(pops) or '-'}")
        if info.get("score"):
            best = sorted(info["score"].items(), key=lambda kv: -kv[1])[:4]
            lines.append("score (HR - BC firing): " + ", ".join(f"{a} {b:+.2f}" for a, b in best))
        for ex in result.examples.get(j, []):
            lines.append(f"- {ex['activation']:.2f} [{ex['label'] or '?'} {ex['split']}] "
                         f"{ex['text']}")
        lines.append("")

    for j in result.core[k][:max_core]:
        block(j, "core")
    for split in result.splits:
        for j in result.tail[k].get(split, [])[:max_tail]:
            if j in result.examples:
                block(j, f"tail ({split})")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- figures
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


__all__ = [
    "DEFINITIONS",
    "LatentAnalysis",
    "PromptInfo",
    "SplitScores",
    "analyze_latents",
    "core_and_tail",
    "default_core_min_splits",
    "firing_fraction",
    "intersections",
    "latent_scores",
    "latents_markdown",
    "plot_core_scores",
    "plot_overlap",
    "plot_popularity",
    "rank_latents",
    "top_activating",
]

