"""Batched, KV-cached greedy generation.

A small loop over the model's own forward (not ``generate``) for two reasons:

* it is pure greedy decoding whatever a checkpoint's ``generation_config`` says
  (hub configs often carry a repetition penalty that ``generate`` would apply);
* rows that have finished are dropped from the batch and from the KV cache, so a batch
  where most rows refuse in a dozen tokens does not pay for 64 steps of every row, and
  with ``max_active`` the next rows take their slots (:mod:`~.continuous`, which holds
  the loop). Per-row interventions follow each row (:func:`hooks.rows_subset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from . import hooks
from .chat import ChatFormatter, EncodedBatch, pad_left
from .continuous import Decoder
from .kv import row_tokens
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
                    capture: PromptCapture | None = None, max_active: int | None = None,
                    stop_when: Callable[[list[int]], bool] | None = None,
                    on_step: Callable[[int], None] | None = None) -> list[list[int]]:
    """Greedy continuation of every row of a left-padded batch; returns new token ids per row.

    A row stops after emitting a stop token (which is kept) or ``max_new_tokens`` tokens.
    ``max_active``: decode at most this many rows at once; the others join as rows finish
    (continuous batching, :mod:`~.continuous`); None: every row at once.
    ``share_prefix``: the prompt prefix all rows share is computed once per intervention
    group. ``capture``: also record the prompt's activations (:class:`PromptCapture`).
    ``stop_when(ids)``: a row also stops once this holds for its new tokens
    (:func:`stop_at_phrases`).
    ``on_step(n_rows)`` is called whenever rows emit a token. Per-row interventions hold
    one row per batch row, in batch order.
    """
    rows = row_tokens(batch)
    pad_id = int(batch.input_ids[0, 0]) if len(rows) else 0
    with hooks.preserve_rows(model):
        return Decoder(model, rows, pad_id, max_new_tokens=max_new_tokens, stop_ids=stop_ids,
                       max_active=max_active or len(rows), share_prefix=share_prefix,
                       drop_finished=drop_finished, capture=capture, stop_when=stop_when,
                       on_step=on_step).run()


def stop_at_phrases(tokenizer, phrases: Sequence[str]) -> Callable[[list[int]], bool]:
    """``stop_when`` for :func:`greedy_generate`: true once a row's decoded text holds one
    of ``phrases`` (lower-cased, apostrophes normalised, as a judge's ``settling_phrases``).

    Example:
        >>> stop = stop_at_phrases(lm.tokenizer, SubstringJudge().settling_phrases)  # doctest: +SKIP
    """
    from .judges.substring import match_key

    keys = tuple(phrases)

    def settled(ids: list[int]) -> bool:
        text = match_key(decode(tokenizer, ids))
        return any(k in text for k in keys)

    return settled


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
