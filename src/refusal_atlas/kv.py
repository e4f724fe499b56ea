"""The KV cache: a fresh cache, the forward's cache argument, and a shared prompt prefix
computed once per batch.

Chat templates put the same system turn and user header in front of every prompt (24 of
the ~44 tokens of Qwen2.5's formatted demo prompts). Causal attention makes that prefix's
keys and values identical for every row that runs the same interventions, so
:func:`prefill_shared_prefix` runs it once per group of identically-intervened rows
(:func:`~.hooks.row_groups`), copies the cache to the other rows and leaves only each row's
own tokens to prefill. The prefix sits at positions ``0..P-1`` of every row and the row's
own tokens follow it after the padding (the mask has the padding in the middle), so every
real token keeps the position it has without sharing. It is the same computation in
another order: float32 agrees to rounding; in bf16 a near-tied argmax can flip, as it can
when the batch size changes.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import torch

from . import hooks
from .chat import EncodedBatch, pad_left, position_ids_from_mask

MIN_PREFIX = 4
"""Shorter shared prefixes are not worth the extra forward pass."""


def full_attention_only(model) -> bool:
    """Whether every layer attends to the whole cache. Sliding-window layers (Gemma-2,
    Mistral) measure distance in cache slots, which the padding between a shared prefix and
    a row's own tokens would stretch, so those models do not share a prefix."""
    cfg = model.config
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    types = getattr(cfg, "layer_types", None)
    if types is not None:
        return all(t == "full_attention" for t in types)
    if hasattr(cfg, "use_sliding_window"):
        return not cfg.use_sliding_window
    return getattr(cfg, "sliding_window", None) is None


def cache_kwarg(model) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def new_cache(model):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers without the config argument
        return DynamicCache()


def row_tokens(batch: EncodedBatch) -> list[list[int]]:
    """Each row's real (unpadded) tokens of a left-padded batch."""
    width = batch.input_ids.shape[1]
    return [batch.input_ids[i, width - n:].tolist() for i, n in enumerate(batch.lengths)]


def shared_prefix_len(rows: Sequence[Sequence[int]], *, min_suffix: int = 1) -> int:
    """Length of the token prefix every row shares, leaving each row ``min_suffix`` own tokens.

    Example:
        >>> shared_prefix_len([[1, 2, 3, 4], [1, 2, 5]], min_suffix=1)
        2
        >>> shared_prefix_len([[1, 2, 3], [1, 2, 3]], min_suffix=2)
        1
    """
    if len(rows) < 2:
        return 0
    limit = min(len(r) for r in rows) - min_suffix
    first, n = rows[0], 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return max(n, 0)


@dataclass
class SharedPrefix:
    """A batch whose shared prefix is already in ``cache``: feed the rest with these."""

    cache: object
    input_ids: torch.Tensor
    """The rows' own tokens, left-padded ``[B, S]``."""
    attention_mask: torch.Tensor
    """``[B, P + S]``: the prefix, the padding, the rows' own tokens."""
    position_ids: torch.Tensor
    """``[B, S]``, continuing after the prefix."""
    prefix_len: int


@dataclass
class PrefixGroups:
    """The prompt prefix every row shares, run once per group of identically-intervened
    rows (:func:`~.hooks.row_groups`)."""

    cache: object
    """One row per group, ``length`` slots."""
    group: torch.Tensor
    """Each row's group."""
    length: int


@torch.no_grad()
def prefill_prefix_groups(model, rows: Sequence[Sequence[int]], *, device,
                          min_suffix: int = 1, min_prefix: int = MIN_PREFIX,
                          up_to_layer: int | None = None) -> PrefixGroups | None:
    """The prefix all ``rows`` (token lists) share, run once per intervention group into a
    new KV cache (rows narrowed with :func:`~.hooks.rows_subset`).

    ``up_to_layer``: fill the cache of the layers before it only (for a forward that stops
    there, :func:`~.hooks.run_capture`).

    Returns None when there is nothing to share (one row, a prefix shorter than
    ``min_prefix``, every row intervened differently, or a model with sliding-window
    layers, :func:`full_attention_only`).
    """
    if not full_attention_only(model):
        return None
    p = shared_prefix_len(rows, min_suffix=min_suffix)
    if p < min_prefix:
        return None
    reps, group = hooks.row_groups(model, len(rows))
    if len(reps) == len(rows):
        return None
    cache = new_cache(model)
    ids = torch.tensor([list(rows[0][:p])], dtype=torch.long, device=device).expand(len(reps), p)
    stop = (hooks.capture_resid_pre(model, [up_to_layer], [-1], stop=True)
            if up_to_layer is not None else nullcontext())
    with hooks.rows_subset(model, reps.to(device)), stop:
        try:
            model(input_ids=ids, attention_mask=torch.ones_like(ids),
                  position_ids=torch.arange(p, device=device).expand(len(reps), p),
                  use_cache=True, logits_to_keep=1, **{cache_kwarg(model): cache})
        except hooks.StopForward:
            pass
    return PrefixGroups(cache, group.to(device), p)


def suffix_inputs(rows: Sequence[Sequence[int]], prefix_len: int, pad_id: int, device
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, position_ids)`` for the rows' tokens after a prefix of
    ``prefix_len`` already in the cache: the own tokens left-padded, the mask over prefix,
    padding and own tokens, the positions continuing after the prefix (0: plain rows)."""
    own = pad_left([list(r[prefix_len:]) for r in rows], pad_id).to(device)
    mask = torch.cat([torch.ones(len(rows), prefix_len, dtype=own.attention_mask.dtype,
                                 device=device), own.attention_mask], dim=1)
    return own.input_ids, mask, position_ids_from_mask(mask)[:, prefix_len:]


def prefill_shared_prefix(model, batch: EncodedBatch, *, min_suffix: int = 1,
                          min_prefix: int = MIN_PREFIX,
                          up_to_layer: int | None = None) -> SharedPrefix | None:
    """Run the batch's shared prefix once per intervention group into a new KV cache, copied
    to every row (:func:`prefill_prefix_groups`; None when there is nothing to share, and
    the caller then runs the batch as it is)."""
    rows = row_tokens(batch)
    device = batch.input_ids.device
    groups = prefill_prefix_groups(model, rows, device=device, min_suffix=min_suffix,
                                   min_prefix=min_prefix, up_to_layer=up_to_layer)
    if groups is None:
        return None
    groups.cache.batch_select_indices(groups.group)
    ids, mask, positions = suffix_inputs(rows, groups.length, int(batch.input_ids[0, 0]), device)
    return SharedPrefix(groups.cache, ids, mask, positions, groups.length)


def prefixed_inputs(model, batch: EncodedBatch, *, share_prefix: bool = True,
                    min_suffix: int = 1, up_to_layer: int | None = None) -> tuple[dict, int]:
    """Forward arguments for ``batch`` and the length of the prefix they skip: with
    ``share_prefix`` and a prefix to share, the rows' own tokens and the cache holding the
    prefix (:func:`prefill_shared_prefix`), else the batch as it is (0).

    Example::

        inputs, skipped = prefixed_inputs(model, batch)
        logits = model(**inputs, use_cache=skipped > 0, logits_to_keep=1).logits
    """
    shared = (prefill_shared_prefix(model, batch, min_suffix=min_suffix, up_to_layer=up_to_layer)
              if share_prefix else None)
    if shared is None:
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                "position_ids": batch.position_ids}, 0
    return {"input_ids": shared.input_ids, "attention_mask": shared.attention_mask,
            "position_ids": shared.position_ids,
            cache_kwarg(model): shared.cache}, shared.prefix_len


# ---------------------------------------------------------------------------
# Rows joining and leaving a running cache (continuous batching)


def _layers(cache) -> list:
    return list(getattr(cache, "layers", []))


def rows_mergeable(model) -> bool:
    """Whether rows of the model's cache can be copied, joined and left-trimmed slot by
    slot: every layer a plain growing layer (keys and values ``[B, H, T, D]``) of a
    full-attention model. Sliding-window and recurrent layers keep state that is not one
    slot per token."""
    from transformers.cache_utils import DynamicLayer

    layers = _layers(new_cache(model))
    return (full_attention_only(model) and bool(layers)
            and all(type(layer) is DynamicLayer for layer in layers))


def gather_rows(model, cache, index: torch.Tensor):
    """A new cache holding rows ``index`` of ``cache`` (rows may repeat); ``cache`` is kept."""
    out = new_cache(model)
    copy_layers(cache, out, range(len(_layers(cache))), index)
    return out


def copy_layers(src, dst, layers, index: torch.Tensor) -> None:
    """Layers ``layers`` of cache ``dst`` replaced by rows ``index`` of ``src``'s (empty
    layers of ``src`` are skipped)."""
    src_layers, dst_layers = _layers(src), _layers(dst)
    for i in layers:
        a, b = src_layers[i], dst_layers[i]
        if not a.is_initialized:
            continue
        if not b.is_initialized:
            b.lazy_initialization(a.keys, a.values)
        b.keys = a.keys.index_select(0, index)
        b.values = a.values.index_select(0, index)


def _pad_slots(t: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - t.shape[-2]
    if missing <= 0:
        return t
    return torch.cat([t.new_zeros(*t.shape[:-2], missing, t.shape[-1]), t], dim=-2)


def join_rows(cache, mask: torch.Tensor, other, other_mask: torch.Tensor
              ) -> tuple[object, torch.Tensor]:
    """``other``'s rows appended to ``cache``'s (in place), the shorter one padded on the
    left with masked-out slots so both end at the same slot; returns the cache and the
    joined ``[B, T]`` attention mask."""
    width = max(mask.shape[1], other_mask.shape[1])
    for a, b in zip(_layers(cache), _layers(other)):
        a.keys = torch.cat([_pad_slots(a.keys, width), _pad_slots(b.keys, width)])
        a.values = torch.cat([_pad_slots(a.values, width), _pad_slots(b.values, width)])
    pad = lambda m: torch.cat([m.new_zeros(m.shape[0], width - m.shape[1]), m], dim=1)  # noqa: E731
    return cache, torch.cat([pad(mask), pad(other_mask)])


def trim_left(cache, mask: torch.Tensor) -> torch.Tensor:
    """Drop the leading slots no row attends to (left by rows that have left); returns the
    trimmed mask. Keeps a joined batch's cache as long as its longest row, not its history."""
    used = mask.any(dim=0).nonzero()
    start = int(used[0]) if len(used) else mask.shape[1]
    if start == 0:
        return mask
    for layer in _layers(cache):
        layer.keys = layer.keys[..., start:, :]
        layer.values = layer.values[..., start:, :]
    return mask[:, start:]
