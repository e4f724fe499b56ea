"""Batched, KV-cached greedy generation.

A small loop over the model's own forward (not ``generate``) for two reasons:

* it is pure greedy decoding whatever a checkpoint's ``generation_config`` says
  (hub configs often carry a repetition penalty that ``generate`` would apply);
* rows that have finished are dropped from the batch and from the KV cache, so a batch
  where most rows refuse in a dozen tokens does not pay for 64 steps of every row.
  Per-row interventions follow the batch through :func:`hooks.select_rows`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from . import hooks
from .chat import ChatFormatter, EncodedBatch, pad_left
from .kv import cache_kwarg, new_cache, prefill_shared_prefix
from .progress import progress_bar


@dataclass
class GenerationResult:
    token_ids: list[list[int]]
    texts: list[str]


def stop_token_ids(model, tokenizer) -> list[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


@dataclass
class PromptCapture:
    """``resid_pre`` of the prompt at ``layers`` and ``positions`` (negative, from the end
    of the prompt), read during generation's prefill: the activations come with the
    response for no extra forward pass. :func:`greedy_generate` fills ``acts``
    (``{layer: [B, n_positions, d]}``, in the model's dtype)."""

    layers: Sequence[int]
    positions: Sequence[int] = (-2,)
    acts: dict[int, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def greedy_generate(model, batch: EncodedBatch, *, max_new_tokens: int, stop_ids: Sequence[int],
                    drop_finished: bool = True, share_prefix: bool = True,
                    capture: PromptCapture | None = None,
                    on_step: Callable[[int], None] | None = None) -> list[list[int]]:
    """Greedy continuation of every row of a left-padded batch; returns new token ids per row.

    A row stops after emitting a stop token (which is kept) or ``max_new_tokens`` tokens.
    ``share_prefix``: the prompt prefix all rows share is computed once
    (:func:`~.kv.prefill_shared_prefix`). ``capture``: also record the prompt's
    activations (:class:`PromptCapture`). ``on_step(n_active)`` is called once per
    decoding step.
    """
    with hooks.preserve_rows(model):
        return _greedy(model, batch, max_new_tokens, stop_ids, drop_finished, share_prefix,
                       capture, on_step)


def _greedy(model, batch: EncodedBatch, max_new_tokens: int, stop_ids: Sequence[int],
            drop_finished: bool, share_prefix: bool, capture: PromptCapture | None,
            on_step: Callable[[int], None] | None) -> list[list[int]]:
    device = next(model.parameters()).device
    batch = batch.to(device)
    stop = torch.tensor(sorted(set(stop_ids)), device=device)
    cache_arg = cache_kwarg(model)
    # the captured positions must lie in the rows' own tokens, after the shared prefix
    own = max(1, -min(capture.positions)) if capture is not None else 1
    shared = prefill_shared_prefix(model, batch, min_suffix=own) if share_prefix else None
    if shared is not None:
        cache, input_ids = shared.cache, shared.input_ids
        attention_mask, positions = shared.attention_mask, shared.position_ids
    else:
        cache, input_ids = new_cache(model), batch.input_ids
        attention_mask, positions = batch.attention_mask, batch.position_ids
    n_rows = input_ids.shape[0]
    out: list[list[int]] = [[] for _ in range(n_rows)]
    active = torch.arange(n_rows, device=device)
    with (hooks.capture_resid_pre(model, capture.layers, capture.positions)
          if capture is not None else nullcontext()) as captured:
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=positions, use_cache=True, logits_to_keep=1,
                       **{cache_arg: cache}).logits
    if capture is not None:
        capture.acts = dict(captured.acts)
    next_pos = positions[:, -1] + 1
    for step in range(max_new_tokens):
        token = logits[:, -1, :].argmax(dim=-1)
        for row, tok in zip(active.tolist(), token.tolist()):
            out[row].append(tok)
        if on_step is not None:
            on_step(len(active))
        if step == max_new_tokens - 1:
            break
        finished = torch.isin(token, stop)
        if finished.all():
            break
        if finished.any():
            keep = (~finished).nonzero().squeeze(-1)
            if drop_finished:
                cache.batch_select_indices(keep)
                hooks.select_rows(model, keep)
                active, token = active[keep], token[keep]
                attention_mask, next_pos = attention_mask[keep], next_pos[keep]
        attention_mask = torch.cat(
            [attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        logits = model(input_ids=token[:, None], attention_mask=attention_mask,
                       position_ids=next_pos[:, None], use_cache=True, logits_to_keep=1,
                       **{cache_arg: cache}).logits
        next_pos = next_pos + 1
    if not drop_finished:
        out = [_cut_at_stop(ids, stop_ids) for ids in out]
    return out


def _cut_at_stop(ids: list[int], stop_ids: Sequence[int]) -> list[int]:
    for i, tok in enumerate(ids):
        if tok in stop_ids:
            return ids[: i + 1]
    return ids


def decode(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True).strip()


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped so rows of similar length share a batch (less padding to compute)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def generate(lm, prompts: Sequence[str], *, formatter: ChatFormatter | None = None,
             max_new_tokens: int = 64, batch_size: int = 32,
             description: str = "generate") -> GenerationResult:
    """Greedy, KV-cached, batched generation for a list of prompts, in input order. Any
    hooks active on the model (``direction.steer``, ``direction.ablate``) apply.

    Args:
        lm: a :class:`~refusal_atlas.models.LoadedModel`.
        prompts: user messages; each is chat-formatted by ``formatter``.
        formatter: default: the model's chat template, prompts cut to 128 tokens.
        max_new_tokens: the most tokens generated per prompt (stops earlier at EOS).
        batch_size: prompts per batch (speed only).

    Returns:
        :class:`GenerationResult` with ``texts`` and ``token_ids``.

    Example:
        >>> import refusal_atlas as ra
        >>> lm = ra.load_model("smollm2-135m-instruct")  # doctest: +SKIP
        >>> ra.generate(lm, ["How do I bake bread?"], max_new_tokens=32).texts  # doctest: +SKIP
    """
    formatter = formatter or ChatFormatter(lm.tokenizer)
    stop = stop_token_ids(lm.model, lm.tokenizer)
    encoded = [formatter.encode(p) for p in prompts]
    results: list[list[int]] = [[] for _ in prompts]
    with progress_bar(description, total=len(prompts), unit="prompt") as bar:
        for idx in length_sorted_batches([len(e) for e in encoded], batch_size):
            batch = pad_left([encoded[i] for i in idx], formatter.pad_id)
            for i, ids in zip(idx, greedy_generate(lm.model, batch, max_new_tokens=max_new_tokens,
                                                   stop_ids=stop)):
                results[i] = ids
            bar.advance(len(idx))
    return GenerationResult(results, [decode(lm.tokenizer, ids) for ids in results])
