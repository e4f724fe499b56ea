"""Experiment 5, output-free selection: COSMIC (Siu et al., ACL Findings 2025, "COSMIC:
Generalized Refusal Direction Identification in LLM Activations"; the linear (LCE) variant
of its public code) chooses the layer and direction from activations alone, no generated
text.

1. Evaluation layers: the block outputs (``resid_pre`` l+1) where the mean harmful and mean
   harmless last-token activations have the lowest cosine; the lowest
   ``low_similarity_fraction`` of the layers (COSMIC: 10%, at least one here).
2. Candidates: the difference in means (harmful - harmless) at each ``resid_pre`` layer below
   ``max_layer_fraction`` of the depth (COSMIC prunes the last 20%), at the run's position.
3. Scores, per candidate, by forward passes with hooks: the *refusal score* is the cosine
   between the mean last-token activation of the harmful prompts with the candidate ablated
   everywhere (mean over prompts and evaluation layers) and the same mean of the unhooked
   harmless prompts; the *steering score* is the cosine between the harmless prompts' mean
   with the candidate added at its layer (coefficient 1, the raw difference) and the
   unhooked harmful prompts' mean. A candidate whose ablation moves the harmless prompts'
   next-token distribution by a mean KL > ``kl_threshold`` (COSMIC: 0.1) is discarded.
   COSMIC picks the largest refusal + steering score.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .. import hooks
from .findings import Finding

__all__ = ["candidate_directions", "cosmic_findings", "low_similarity_layers", "mean_unit",
           "score_candidates", "select_layer"]


def _unit(v: torch.Tensor) -> torch.Tensor:
    v = v.double()
    return v / (v.norm() + 1e-12)


def low_similarity_layers(harmful: torch.Tensor, harmless: torch.Tensor,
                          layers: Sequence[int], fraction: float) -> tuple[list[int], dict]:
    """The ``fraction`` of ``layers`` (at least one) where the mean harmful and mean harmless
    activations (``[n, len(layers), d]`` each) have the lowest cosine; and every cosine.

    Example:
        >>> h = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]); b = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
        >>> low_similarity_layers(h, b, [3, 4], 0.5)[0]
        [4]
    """
    mh, mb = harmful.double().mean(0), harmless.double().mean(0)
    cos = (mh * mb).sum(-1) / (mh.norm(dim=-1) * mb.norm(dim=-1) + 1e-12)
    sims = {int(layer): float(c) for layer, c in zip(layers, cos)}
    n = max(1, int(fraction * len(layers)))
    return [int(layers[i]) for i in np.argsort(cos.numpy(), kind="stable")[:n]], sims


def mean_unit(acts: torch.Tensor) -> torch.Tensor:
    """The unit mean over prompts and layers of ``[n, n_layers, d]`` activations (COSMIC's
    one "global" vector per prompt set)."""
    return _unit(acts.double().mean(dim=(0, 1)))


def candidate_directions(harmful: torch.Tensor, harmless: torch.Tensor,
                         layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """``{layer: mean(harmful) - mean(harmless)}`` (raw, not unit) from ``[n, len(layers), d]``."""
    diff = harmful.double().mean(0) - harmless.double().mean(0)
    return {int(layer): diff[i].float() for i, layer in enumerate(layers)}


@torch.no_grad()
def _readout(lm, formatter, texts: Sequence[str], layers: Sequence[int], *, batch_size: int,
             logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Last-token ``resid_pre`` of ``layers`` ``[n, len(layers), d]`` (and last-position
    logits) under whatever hooks are active."""
    acts, outs = [], []
    for s in range(0, len(texts), batch_size):
        batch = formatter.batch(list(texts[s:s + batch_size])).to(lm.device)
        # registered after the intervention hooks, so the capture sees the modified stream
        with hooks.capture_resid_pre(lm.model, layers, [-1]) as cap:
            out = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           position_ids=batch.position_ids, use_cache=False)
        acts.append(torch.stack([cap.acts[layer][:, 0].double().cpu() for layer in layers], 1))
        if logits:
            outs.append(out.logits[:, -1].double().cpu())
    return torch.cat(acts), (torch.cat(outs) if logits else None)


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
    """Mean KL(p || q) of next-token distributions (as COSMIC's ``kl_div_fn``)."""
    p, q = p_logits.softmax(-1), q_logits.softmax(-1)
    return float((p * ((p + 1e-6).log() - (q + 1e-6).log())).sum(-1).mean())


def score_candidates(lm, formatter, harmful: Sequence[str], harmless: Sequence[str],
                     candidates: Mapping[int, torch.Tensor], eval_layers: Sequence[int], *,
                     batch_size: int = 16, progress=None) -> dict[int, dict]:
    """COSMIC's refusal score, steering score and KL per candidate layer (no generation).

    Args:
        lm: a loaded model; formatter: its chat formatter.
        harmful, harmless: the prompts the scores read.
        candidates: ``{resid_pre layer: raw difference in means}``.
        eval_layers: the ``resid_pre`` layers the scores read (:func:`low_similarity_layers`).
        batch_size: prompts per forward pass.
        progress: called once per candidate (a progress bar's ``advance``), optional.

    Example::

        scores = score_candidates(lm, fmt, hr_texts, bc_texts, {6: d6, 8: d8}, [12, 13])
    """
    eval_layers = [int(x) for x in eval_layers]
    base_h, _ = _readout(lm, formatter, harmful, eval_layers, batch_size=batch_size)
    base_b, base_logits = _readout(lm, formatter, harmless, eval_layers, batch_size=batch_size,
                                   logits=True)
    target_harmless, target_harmful = mean_unit(base_b), mean_unit(base_h)
    out = {}
    for layer, vec in candidates.items():
        unit = _unit(vec).float()
        with hooks.ablate_direction(lm.model, unit):
            h_abl, _ = _readout(lm, formatter, harmful, eval_layers, batch_size=batch_size)
            _, b_logits = _readout(lm, formatter, harmless, eval_layers, batch_size=batch_size,
                                   logits=True)
        with hooks.add_to_resid_pre(lm.model, layer, vec.float(), alpha=1.0):
            b_add, _ = _readout(lm, formatter, harmless, eval_layers, batch_size=batch_size)
        refusal = float(mean_unit(h_abl) @ target_harmless)
        steering = float(mean_unit(b_add) @ target_harmful)
        out[int(layer)] = {"refusal_score": refusal, "steering_score": steering,
                           "score": refusal + steering, "kl": _kl(base_logits, b_logits)}
        if progress is not None:
            progress()
    return out


def select_layer(scores: Mapping[int, Mapping[str, float]], *, kl_threshold: float | None = 0.1
                 ) -> tuple[int, list[int]]:
    """The candidate with the largest refusal + steering score among those whose KL is at most
    ``kl_threshold`` (all candidates when every one is filtered out); and the kept layers.

    Example:
        >>> select_layer({3: {"score": 1.5, "kl": 0.5}, 4: {"score": 1.2, "kl": 0.01}})
        (4, [4])
    """
    kept = [layer for layer, s in scores.items()
            if kl_threshold is None or (np.isfinite(s["kl"]) and s["kl"] <= kl_threshold)]
    pool = kept or list(scores)
    return max(pool, key=lambda layer: (scores[layer]["score"], -layer)), kept


def cosmic_findings(cosmic_layer: int, our_layer: int, cosines: Mapping[str, float], *,
                    agree_layers: int = 1, agree_cosine: float = 0.9,
                    details: Mapping[str, Any] | None = None) -> list[Finding]:
    """One finding: does COSMIC's output-free choice agree with ours?

    ``cosines``: COSMIC's direction against ours, ``pooled`` (the unit mean of our split
    directions) and one entry per split.

    Example:
        >>> f = cosmic_findings(10, 11, {"pooled": 0.95, "A": 0.9})[0]
        >>> f.verdict, f.supported
        ('agree', True)
    """
    pooled = cosines.get("pooled")
    splits = {k: v for k, v in cosines.items() if k != "pooled"}
    per_split = ", ".join(f"{k} {v:.2f}" for k, v in splits.items())
    near = abs(cosmic_layer - our_layer) <= agree_layers
    close = pooled is not None and pooled >= agree_cosine
    if near and close:
        verdict = "agree"
    else:
        why = ([] if near else [f"layers {cosmic_layer} vs {our_layer}"]) + \
              ([] if close else [f"cosine {pooled:.2f} < {agree_cosine}" if pooled is not None
                                 else "no cosine"])
        verdict = "disagree (" + "; ".join(why) + ")"
    return [Finding(
        "cosmic", "Does an output-free (COSMIC) choice of layer and direction agree with "
                  "ours (layer scan and difference in means per split)?",
        measured=f"COSMIC picks resid_pre layer {cosmic_layer}, ours is {our_layer}; cosine of "
                 f"COSMIC's direction with our pooled direction (unit mean of the split "
                 f"directions) {pooled:.2f}" + (f"; per split {per_split}" if per_split else ""),
        criterion=f"agree if the layers differ by at most {agree_layers} and the cosine with "
                  f"our pooled direction is >= {agree_cosine}",
        verdict=verdict, supported=bool(near and close), subject=None,
        details={"cosmic_layer": cosmic_layer, "our_layer": our_layer, "cosines": dict(cosines),
                 **(details or {})})]
