"""The layer scan: where refusal is linearly readable, and where adding it causes refusal.

:func:`layer_scan` measures held-out HR/BC separation along each layer's
difference-in-means direction; :func:`choose_causal_layer` then applies Arditi et al.'s
'induce' criterion on the first response token (:func:`induce_scores`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from . import hooks
from .directions import diff_in_means
from .errors import UserError
from .hooks import add_to_resid_pre
from .kv import prefixed_inputs


@dataclass
class LayerScan:
    layers: list[int]
    separation: list[float]
    """Held-out Cohen's d of HR vs BC projections onto the direction (2-fold)."""
    accuracy: list[float]
    """Held-out accuracy of thresholding the projection at the midpoint of the two means."""
    projection_gap: list[float]
    raw_norm: list[float]
    chosen_layer: int
    rule: str
    per_split: dict[str, list[float]] = field(default_factory=dict)
    induce: dict[int, float] = field(default_factory=dict)
    """Causal check per candidate layer: mean change of the refusal log-odds of BC prompts'
    first response token when alpha = the layer's HR/BC projection gap is added along the
    layer's direction (see :func:`induce_scores`)."""
    refusal_tokens: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LayerScan":
        data = dict(data)
        data["induce"] = {int(k): v for k, v in (data.get("induce") or {}).items()}
        return cls(**data)


def _held_out_stats(hr: torch.Tensor, bc: torch.Tensor, seed: int) -> tuple[float, float]:
    """2-fold: direction from one half, Cohen's d and accuracy on the other, averaged."""
    gen = torch.Generator().manual_seed(seed)
    hr_perm, bc_perm = torch.randperm(len(hr), generator=gen), torch.randperm(len(bc), generator=gen)
    ds, accs = [], []
    for fold in range(2):
        hr_tr, hr_te = _halves(hr[hr_perm], fold)
        bc_tr, bc_te = _halves(bc[bc_perm], fold)
        unit, _ = diff_in_means(hr_tr, bc_tr)
        mid = 0.5 * float((hr_tr.float() @ unit).mean() + (bc_tr.float() @ unit).mean())
        p_hr, p_bc = hr_te.double() @ unit.double(), bc_te.double() @ unit.double()
        pooled = float(torch.sqrt(0.5 * (p_hr.var(unbiased=True) + p_bc.var(unbiased=True))))
        ds.append(float(p_hr.mean() - p_bc.mean()) / max(pooled, 1e-12))
        accs.append(float(((p_hr > mid).sum() + (p_bc <= mid).sum()) / (len(p_hr) + len(p_bc))))
    return float(np.mean(ds)), float(np.mean(accs))


def _same_means(hr: torch.Tensor, bc: torch.Tensor) -> bool:
    diff = hr.double().mean(0) - bc.double().mean(0)
    return float(diff.norm()) <= 1e-9 * max(float(hr.double().norm()), 1.0)


def _halves(x: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    half = len(x) // 2
    a, b = x[:half], x[half:]
    return (a, b) if fold == 0 else (b, a)


def layer_scan(hr: torch.Tensor, bc: torch.Tensor, layers: Sequence[int], *,
               per_split: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
               n_model_layers: int | None = None, max_depth: float = 0.8,
               plateau: float = 0.9, seed: int = 0) -> LayerScan:
    """Separation of HR and BC activations along the diff-in-means direction, per layer.

    ``hr`` and ``bc`` are ``[n, n_layers_scanned, d]``. The chosen layer is the earliest
    one whose held-out separation reaches ``plateau`` of the best separation among layers
    in the first ``max_depth`` of the model: refusal is linearly readable there, and late
    layers (which mostly prepare the output tokens) are avoided, as in Arditi et al. 2024.
    """
    if hr.shape[0] < 4 or bc.shape[0] < 4:
        raise UserError(f"the layer scan needs at least 4 HR and 4 BC prompts (got {hr.shape[0]} "
                        f"and {bc.shape[0]})")
    layers = list(layers)
    seps, accs, gaps, norms = [], [], [], []
    for li in range(len(layers)):
        if _same_means(hr[:, li], bc[:, li]):
            # e.g. layer 0 at a template position: every prompt has the same token there
            seps.append(0.0), accs.append(0.5), gaps.append(0.0), norms.append(0.0)
            continue
        sep, acc = _held_out_stats(hr[:, li], bc[:, li], seed)
        unit, norm = diff_in_means(hr[:, li], bc[:, li])
        seps.append(sep)
        accs.append(acc)
        gaps.append(float((hr[:, li].float() @ unit).mean() - (bc[:, li].float() @ unit).mean()))
        norms.append(norm)
    depth = n_model_layers or (max(layers) + 1)
    eligible = [i for i, layer in enumerate(layers) if 0 < layer <= max_depth * depth] or \
        list(range(len(layers)))
    best = max(seps[i] for i in eligible)
    chosen = next(layers[i] for i in eligible if seps[i] >= plateau * best)
    split_seps = {}
    for name, (s_hr, s_bc) in (per_split or {}).items():
        if len(s_hr) >= 4 and len(s_bc) >= 4:
            split_seps[name] = [0.0 if _same_means(s_hr[:, li], s_bc[:, li])
                                else _held_out_stats(s_hr[:, li], s_bc[:, li], seed)[0]
                                for li in range(len(layers))]
    rule = (f"earliest layer in 1..{int(max_depth * depth)} whose held-out HR/BC separation "
            f"(Cohen's d) reaches {plateau:.0%} of the best in that range")
    return LayerScan(layers=layers, separation=seps, accuracy=accs, projection_gap=gaps,
                     raw_norm=norms, chosen_layer=chosen, rule=rule, per_split=split_seps)


def refusal_first_tokens(tokenizer, responses: Sequence[str], *, coverage: float = 0.8,
                         max_tokens: int = 5) -> list[int]:
    """The first tokens with which the model starts its own refusals (most common first),
    enough of them to cover ``coverage`` of the refusals: "I" of "I'm sorry", "As" of
    "As an AI", ... Read from the base model's labelled responses, so no per-model list."""
    counts = Counter()
    for text in responses:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            counts[ids[0]] += 1
    total = sum(counts.values())
    chosen, covered = [], 0
    for token, n in counts.most_common(max_tokens):
        chosen.append(int(token))
        covered += n
        if covered >= coverage * total:
            break
    return chosen


def refusal_log_odds(logits: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """log p(refusal start) - log p(anything else) of next-token logits [B, V]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    refuse = torch.logsumexp(logp[:, list(token_ids)], dim=-1)
    other = torch.log1p(-refuse.exp().clamp(max=1 - 1e-6))
    return refuse - other


@torch.no_grad()
def first_token_log_odds(model, batch, token_ids: Sequence[int], *,
                         share_prefix: bool = True) -> torch.Tensor:
    """Per prompt of ``batch``: the refusal log-odds of the first response token (one forward
    pass reading only the last position's logits; hooks active on ``model`` apply).
    ``share_prefix``: the chat template's prefix every prompt shares is computed once
    (:func:`~.kv.prefill_shared_prefix`)."""
    inputs, skipped = prefixed_inputs(model, batch, share_prefix=share_prefix)
    logits = model(**inputs, use_cache=skipped > 0, logits_to_keep=1).logits
    return refusal_log_odds(logits[:, -1], token_ids)


@dataclass
class BasePass:
    """The unhooked pass of :func:`induce_scores`: each prompt's refusal log-odds and the
    ``resid_pre`` of its tokens after the shared prefix at the candidate layers, from
    which a pass hooked at one of those layers starts (the blocks before it replayed,
    :func:`~.hooks.replay_blocks`)."""

    log_odds: torch.Tensor
    resid: dict[int, torch.Tensor]


@torch.no_grad()
def base_pass(model, batch, token_ids: Sequence[int], layers: Sequence[int]) -> BasePass:
    """:func:`first_token_log_odds` with no hook, keeping ``resid_pre`` at ``layers``."""
    inputs, skipped = prefixed_inputs(model, batch)
    kept = sorted({int(layer) for layer in layers if 0 < int(layer) < hooks.n_layers(model)})
    with hooks.tensor_outputs(model, 0) as returns_tensor, \
            hooks.capture_resid_pre(model, kept or [0], None) as captured:
        logits = model(**inputs, use_cache=skipped > 0, logits_to_keep=1).logits
    resid = {k: captured.acts[k] for k in kept} if returns_tensor == [True] else {}
    return BasePass(refusal_log_odds(logits[:, -1], token_ids), resid)


@torch.no_grad()
def _hooked_log_odds(model, batch, token_ids: Sequence[int], base: BasePass | None
                     ) -> torch.Tensor:
    """:func:`first_token_log_odds` under the active hooks, the blocks before the first
    hooked one replayed from ``base`` (they compute what the unhooked pass did)."""
    upto = hooks.first_hooked_block(model)
    if base is None or upto not in base.resid:
        return first_token_log_odds(model, batch, token_ids)
    inputs, skipped = prefixed_inputs(model, batch)
    with hooks.replay_blocks(model, upto, base.resid[upto]):
        logits = model(**inputs, use_cache=skipped > 0, logits_to_keep=1).logits
    return refusal_log_odds(logits[:, -1], token_ids)


@torch.no_grad()
def induce_scores(model, batch, candidates: Mapping[int, tuple[torch.Tensor, float]],
                  token_ids: Sequence[int], on_layer=None,
                  base: BasePass | torch.Tensor | None = None) -> dict[int, float]:
    """Per layer: how much adding alpha * d at resid_pre raises the refusal log-odds.

    ``candidates`` maps layer -> (unit direction, alpha). One forward pass per layer over
    ``batch`` (benign, complied prompts), reading only the last position's logits, plus one
    without a hook unless ``base`` is given: a :class:`BasePass` of the same batch (each
    layer's pass then starts at that layer, ~40% less compute over a scan's layers) or
    :func:`first_token_log_odds` of it.
    """
    if base is None:
        base = base_pass(model, batch, token_ids, list(candidates))
    reference = base.log_odds if isinstance(base, BasePass) else base
    replay = base if isinstance(base, BasePass) else None
    scores = {}
    for layer, (unit, alpha) in candidates.items():
        with add_to_resid_pre(model, layer, unit, alpha=alpha):
            hooked = _hooked_log_odds(model, batch, token_ids, replay)
            scores[layer] = float((hooked - reference).mean())
        if on_layer is not None:
            on_layer()
    return scores


def causal_candidates(scan: LayerScan, hr: torch.Tensor, bc: torch.Tensor, *,
                      n_model_layers: int, max_depth: float
                      ) -> dict[int, tuple[torch.Tensor, float]]:
    """layer -> (unit direction, alpha = its projection gap) for the layers the causal
    check tries: past layer 0, within ``max_depth`` of the model, HR and BC means apart."""
    candidates = {}
    for li, layer in enumerate(scan.layers):
        if 0 < layer <= max_depth * n_model_layers and not _same_means(hr[:, li], bc[:, li]):
            unit, _ = diff_in_means(hr[:, li], bc[:, li])
            candidates[layer] = (unit, scan.projection_gap[li])
    return candidates


def choose_causal_layer(scan: LayerScan, model, batch,
                        candidates: Mapping[int, tuple[torch.Tensor, float]],
                        refusal_tokens: Sequence[int], refusal_texts: Sequence[str], *,
                        n_model_layers: int, max_depth: float, induce_fraction: float,
                        on_layer=None) -> LayerScan:
    """Choose the layer whose direction most raises refusal when added (Arditi et al.'s
    'induce' criterion, scored on the first response token instead of generations).

    Args:
        scan: the separation scan; its ``induce``, ``refusal_tokens``, ``chosen_layer`` and
            ``rule`` are updated in place (and it is returned).
        model: the Hugging Face model.
        batch: an encoded batch of benign, complied prompts.
        candidates: from :func:`causal_candidates`.
        refusal_tokens: token ids that start the model's refusals
            (:func:`refusal_first_tokens`), and ``refusal_texts`` the same decoded.
    """
    if not candidates:
        return scan
    scores = induce_scores(model, batch, candidates, refusal_tokens, on_layer=on_layer)
    return causal_choice(scan, scores, refusal_texts, n_prompts=batch.input_ids.shape[0],
                         n_model_layers=n_model_layers, max_depth=max_depth,
                         induce_fraction=induce_fraction)


def causal_choice(scan: LayerScan, scores: Mapping[int, float], refusal_texts: Sequence[str], *,
                  n_prompts: int, n_model_layers: int, max_depth: float,
                  induce_fraction: float) -> LayerScan:
    """:func:`choose_causal_layer` from induce scores computed elsewhere (e.g. by an
    executor's workers, :func:`~.layer_scan_units.scan_induce_scores`); ``scan`` is updated
    in place and returned."""
    if not scores:
        return scan
    scan.induce = dict(scores)
    scan.refusal_tokens = list(refusal_texts)
    best = max(scores.values())
    if best <= 0:  # no layer's direction causes refusal: keep the separation rule's choice
        scan.rule += "; the causal check found no layer that raises refusal"
        return scan
    # The induce score keeps growing towards the output (late layers act on the logits
    # directly), so "the best layer" would always be the last one allowed. The earliest
    # layer that reaches a fraction of the best is where the direction starts to *cause*
    # refusal, which is the layer the method wants (mid-depth, like the paper's choices).
    scan.chosen_layer = min(k for k in sorted(scores) if scores[k] >= induce_fraction * best)
    scan.rule = (f"earliest layer in 1..{int(max_depth * n_model_layers)} whose direction, added "
                 f"with alpha = its HR/BC projection gap, raises the refusal log-odds of the first "
                 f"response token on {n_prompts} BC prompts by at least "
                 f"{induce_fraction:.0%} of the best layer's gain (refusal starts: "
                 f"{', '.join(repr(t) for t in scan.refusal_tokens)})")
    return scan
