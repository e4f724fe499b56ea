"""Residual-stream activation corpus for training an SAE on a model that has none.

What goes in (all read at ``resid_pre`` of one layer, the SAE's hook point):

* **prompt rows**: every position of each chat-formatted prompt. The template's prefix
  that every prompt shares (Qwen's default system prompt plus ``<|im_start|>user\\n``,
  Gemma's ``<bos><start_of_turn>user\\n``, ...) has the same activations in every prompt
  (the model is causal), so it is kept once, for the first sequence only; the rest of
  its copies are dropped (``stats["prefix_rows_dropped"]``).
* **response rows**: the base model's responses (the labels stage's
  ``responses.jsonl``), teacher-forced after their prompt; only the response positions
  are new rows (the prompt positions of that sequence are the prompt rows above, computed
  in the same forward pass).
* **file rows**: user text files (``sae.corpus.files``): ``.txt``/``.md`` read as one
  document each, ``.jsonl``/``.json`` as one document per row (``text``, ``prompt`` or
  ``content`` field, plus ``response`` if present); raw text, no chat template, cut into
  windows of ``chunk_tokens`` tokens, every position kept.
* **position rows**: the analysis position (-2 by default) of every training prompt,
  repeated ``oversample`` times. The latent analysis reads only this position, whose
  activations are a small, distinct part of the stream (without oversampling an 8x SAE
  of Qwen2.5-0.5B explains 0.85 of the variance overall but only about 0.49 there).

Budget: ``max_rows`` caps the training tensor. The position block is reserved first (its
repeat count is lowered, never below 1, if it would take more than half the cap); the
rest is filled by sequences (prompt+response sequences and file chunks, shuffled
together with ``seed``) until the cap is reached; sequences past the cap are never run
through the model, so a small cap is also a fast collection.

Held-out evaluation: a seeded ``holdout`` share of the prompts (chosen by a hash of the
prompt id, so it does not depend on prompt order) is left out of every training row.
Their position rows and their full sequences form the evaluation sets, which give the
honest variance-explained numbers the SAE stage reports.

Norm outliers (attention-sink positions) are left in the corpus; the trainer drops them
(``SAETrainConfig.exclude_norm_outliers``).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..activations import extract_activations
from ..chat import pad_left
from ..errors import UserError
from ..generation import length_sorted_batches
from ..hooks import run_capture
from ..kv import prefixed_inputs
from ..progress import progress_bar

SOURCES = ("prompt", "response", "file", "position")
"""Row source codes: ``ActivationCorpus.source[i]`` indexes this tuple."""


@dataclass(frozen=True)
class CorpusPrompt:
    """One prompt of the corpus and (optionally) the base model's response to it."""

    id: str
    text: str
    response: str | None = None


@dataclass
class CorpusConfig:
    """Settings of :func:`collect_corpus` (see the module docstring)."""

    layer: int
    position: int = -2
    max_rows: int = 200_000
    oversample: int = 8
    holdout: float = 0.1
    include_responses: bool = True
    drop_shared_prefix: bool = True
    files: list[str] = field(default_factory=list)
    chunk_tokens: int = 128
    eval_max_rows: int = 20_000
    seed: int = 0
    batch_size: int = 32

    def validate(self) -> None:
        if self.position >= 0:
            raise UserError(f"the corpus position is counted from the end (negative), got "
                            f"{self.position}")
        if self.max_rows < 1:
            raise UserError(f"the corpus needs a positive row cap, got {self.max_rows}")
        if self.oversample < 0:
            raise UserError(f"oversample must be >= 0, got {self.oversample}")
        if not 0 <= self.holdout < 1:
            raise UserError(f"holdout must lie in [0, 1), got {self.holdout}")
        if self.chunk_tokens < 2:
            raise UserError(f"chunk_tokens must be at least 2, got {self.chunk_tokens}")
        if self.batch_size < 1:
            raise UserError(f"batch_size must be positive, got {self.batch_size}")


@dataclass
class ActivationCorpus:
    """The collected activations (rows ``[N, d_model]``, in the model's dtype)."""

    train: torch.Tensor
    """Training rows."""
    source: torch.Tensor
    """``[N]`` int8: index into :data:`SOURCES` for every training row."""
    position_rows: torch.Tensor
    """``[P, d]``: the analysis position of every prompt (train and held-out), prompt order."""
    position_ids: list[str]
    heldout_ids: list[str]
    eval_position: torch.Tensor | None
    """``[H, d]``: the analysis position of the held-out prompts (None without holdout)."""
    eval_all: torch.Tensor | None
    """Every kept position of the held-out prompts' sequences (None without holdout)."""
    stats: dict[str, Any]

    def source_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.source.long(), minlength=len(SOURCES))
        return {name: int(counts[i]) for i, name in enumerate(SOURCES)}


@dataclass
class _Sequence:
    """Token ids run through the model and which of their positions become rows."""

    ids: list[int]
    keep_from: int
    """Positions >= keep_from are kept (prefix dropping / response-only)."""
    kind: str
    """'prompt' (prompt rows, then response rows after ``prompt_len``) or 'file'."""
    prompt_len: int = 0
    keep_n: int | None = None
    """Keep only the first keep_n kept positions (the last sequence under the budget)."""

    def n_rows(self) -> int:
        n = max(0, len(self.ids) - self.keep_from)
        return n if self.keep_n is None else min(n, self.keep_n)


# --------------------------------------------------------------------------- helpers
def is_heldout(prompt_id: str, fraction: float, seed: int) -> bool:
    """Deterministic, order-independent held-out choice by a hash of (seed, prompt id)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of ``sequences`` (0 for fewer than two).

    Capped at (shortest length - 2) so every sequence keeps its last two positions (the
    template's end, where the analysis reads).
    """
    seqs = [list(s) for s in sequences if len(s)]
    if len(seqs) < 2:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    length = 0
    while length < n and all(s[length] == first[length] for s in seqs):
        length += 1
    return max(0, min(length, n - 2))


def read_corpus_files(paths: Sequence[str | Path]) -> list[str]:
    """Documents from user text files (see the module docstring for the formats)."""
    docs: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise UserError(f"SAE corpus file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"SAE corpus file {path} is not UTF-8 text") from None
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            try:
                rows = json.loads(text) if suffix == ".json" else \
                    [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise UserError(f"SAE corpus file {path} is not valid JSON/JSONL "
                                f"({exc.msg})") from None
            if isinstance(rows, dict):
                rows = [rows]
            for i, row in enumerate(rows):
                if isinstance(row, str):
                    docs.append(row)
                    continue
                if not isinstance(row, dict):
                    raise UserError(f"{path}: row {i + 1} is neither text nor an object")
                body = row.get("text", row.get("prompt", row.get("content")))
                if body is None:
                    raise UserError(f"{path}: row {i + 1} has no 'text', 'prompt' or 'content'")
                response = row.get("response")
                docs.append(str(body) + (f"\n{response}" if response else ""))
        else:
            docs.append(text)
    return [d for d in docs if d.strip()]


def _file_sequences(tokenizer, docs: Sequence[str], chunk_tokens: int) -> list[_Sequence]:
    out = []
    for doc in docs:
        ids = tokenizer(doc, add_special_tokens=True)["input_ids"]
        for start in range(0, len(ids), chunk_tokens):
            chunk = ids[start:start + chunk_tokens]
            if len(chunk) >= 2:
                out.append(_Sequence(list(chunk), 0, "file"))
    return out


def _response_ids(tokenizer, response: str | None) -> list[int]:
    if not response:
        return []
    return list(tokenizer(response, add_special_tokens=False)["input_ids"])


def _capture_rows(lm, formatter, sequences: Sequence[_Sequence], layer: int, batch_size: int,
                  description: str) -> tuple[list[torch.Tensor], list[torch.Tensor], int]:
    """Run ``sequences`` to ``layer``; returns per-sequence kept rows, their source codes and
    the number of (unpadded) tokens processed. Output lists follow the input order."""
    rows: list[torch.Tensor | None] = [None] * len(sequences)
    codes: list[torch.Tensor | None] = [None] * len(sequences)
    tokens = 0
    prompt_code, response_code, file_code = (SOURCES.index(s)
                                             for s in ("prompt", "response", "file"))
    with progress_bar(description, total=sum(len(s.ids) for s in sequences), unit="tok") as bar:
        for group in length_sorted_batches([len(s.ids) for s in sequences], batch_size):
            batch = pad_left([sequences[i].ids for i in group], formatter.pad_id).to(lm.device)
            acts, shared = _run_to_layer(lm.model, batch, layer,
                                         min(sequences[i].keep_from for i in group))
            width = acts.shape[1]
            for r, i in enumerate(group):
                seq = sequences[i]
                start = width - (len(seq.ids) - shared)
                kept = acts[r, start + seq.keep_from - shared:].detach().cpu()
                positions = torch.arange(seq.keep_from, len(seq.ids))
                if seq.keep_n is not None:
                    kept, positions = kept[:seq.keep_n], positions[:seq.keep_n]
                if seq.kind == "file":
                    code = torch.full((kept.shape[0],), file_code, dtype=torch.int8)
                else:
                    code = torch.where(positions < seq.prompt_len, prompt_code,
                                       response_code).to(torch.int8)
                rows[i], codes[i] = kept.clone(), code
                tokens += len(seq.ids)
                bar.advance(len(seq.ids))
    return [r for r in rows if r is not None], [c for c in codes if c is not None], tokens


def _run_to_layer(model, batch, layer: int, keep_from: int) -> tuple[torch.Tensor, int]:
    """``resid_pre`` of ``layer`` at every position after the first ``shared``, and
    ``shared``: the prefix every row shares (the chat template's), computed once per batch
    when no row keeps rows inside it (every row's ``keep_from`` lies past it)."""
    inputs, shared = prefixed_inputs(model, batch, share_prefix=keep_from > 0,
                                     min_suffix=max(1, min(batch.lengths) - keep_from),
                                     up_to_layer=layer)
    return run_capture(model, layers=[layer], **inputs)[layer], shared


# --------------------------------------------------------------------------- collection
def collect_corpus(lm, formatter, prompts: Sequence[CorpusPrompt], config: CorpusConfig, *,
                   cache=None, description: str = "SAE corpus") -> ActivationCorpus:
    """Collect the training (and held-out evaluation) activations; see the module docstring.

    ``formatter`` is the run's :class:`~refusal_atlas.chat.ChatFormatter` (template,
    system prompt, truncation); ``cache`` an optional
    :class:`~refusal_atlas.activations.ActivationCache` for the position rows (the
    activations stage has usually computed them already).
    """
    config.validate()
    start_time = time.perf_counter()
    n_layers = int(lm.model.config.num_hidden_layers)
    if not 0 <= config.layer < n_layers:
        raise UserError(f"SAE corpus layer {config.layer} is out of range: the model has layers "
                        f"0..{n_layers - 1}")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise UserError("SAE corpus prompt ids must be unique")
    docs = read_corpus_files(config.files)
    if not prompts and not docs:
        raise UserError("the SAE corpus is empty: no prompts and no text files")
    tokenizer = lm.tokenizer

    heldout = [p for p in prompts if is_heldout(p.id, config.holdout, config.seed)]
    held_ids = {p.id for p in heldout}
    train_prompts = [p for p in prompts if p.id not in held_ids]

    # ---- the analysis position of every prompt (cache hits after the activations stage)
    if prompts:
        pos = extract_activations(lm, formatter, [p.text for p in prompts], [config.layer],
                                  [config.position], batch_size=config.batch_size, cache=cache,
                                  description=f"{description}: position {config.position}")
        position_rows = pos[:, 0, 0].to(lm.dtype if lm.dtype.is_floating_point else torch.float32)
    else:
        position_rows = torch.empty(0, lm.d_model)
    index = {p.id: i for i, p in enumerate(prompts)}
    train_pos = position_rows[[index[p.id] for p in train_prompts]] if train_prompts else \
        position_rows[:0]
    eval_position = position_rows[[index[p.id] for p in heldout]] if heldout else None

    oversample = config.oversample
    if train_pos.shape[0] and oversample:
        fit = (config.max_rows // 2) // train_pos.shape[0]
        if fit < oversample:
            oversample = max(1, fit) if fit >= 1 else 0
    n_pos_block = train_pos.shape[0] * oversample
    pos_block = train_pos.repeat(oversample, 1) if n_pos_block else train_pos[:0]
    if n_pos_block > config.max_rows:  # fewer rows than prompts fit: a seeded subset
        g = torch.Generator().manual_seed(config.seed)
        pos_block = pos_block[torch.randperm(n_pos_block, generator=g)[:config.max_rows]]
        n_pos_block = config.max_rows

    # ---- sequences
    def prompt_sequences(group: Sequence[CorpusPrompt]) -> list[_Sequence]:
        out = []
        for p in group:
            p_ids = formatter.encode(p.text)
            r_ids = _response_ids(tokenizer, p.response) if config.include_responses else []
            out.append(_Sequence(list(p_ids) + r_ids, 0, "prompt", prompt_len=len(p_ids)))
        return out

    train_seqs = prompt_sequences(train_prompts)
    eval_seqs = prompt_sequences(heldout)
    file_seqs = _file_sequences(tokenizer, docs, config.chunk_tokens)

    prefix: list[int] = []
    if config.drop_shared_prefix and len(prompts) >= 2:
        encoded = [formatter.encode(p.text) for p in prompts]
        untruncated = [e for e in encoded if len(e) < formatter.max_tokens] or encoded
        prefix = list(untruncated[0][:shared_prefix_length(untruncated)])

    rng = random.Random(config.seed)
    pool = train_seqs + file_seqs
    order = list(range(len(pool)))
    rng.shuffle(order)
    budget = config.max_rows - n_pos_block
    selected: list[_Sequence] = []
    prefix_kept = False
    dropped_prefix_rows = 0
    for i in order:
        if budget <= 0:
            break
        seq = pool[i]
        if prefix and seq.kind == "prompt" and seq.ids[:len(prefix)] == prefix:
            if prefix_kept:
                seq.keep_from = len(prefix)
                dropped_prefix_rows += len(prefix)
            prefix_kept = True
        if seq.n_rows() > budget:
            seq.keep_n = budget
        if seq.n_rows() == 0:
            continue
        budget -= seq.n_rows()
        selected.append(seq)
    for seq in eval_seqs:  # held-out sequences: the same prefix rule, their own first copy
        if prefix and seq.ids[:len(prefix)] == prefix:
            seq.keep_from = len(prefix)
    eval_budget = config.eval_max_rows
    eval_selected = []
    for seq in eval_seqs:
        if eval_budget <= 0:
            break
        if seq.n_rows() > eval_budget:
            seq.keep_n = eval_budget
        eval_budget -= seq.n_rows()
        eval_selected.append(seq)

    rows, codes, tokens = _capture_rows(lm, formatter, selected, config.layer, config.batch_size,
                                        f"{description}: L{config.layer} all positions") \
        if selected else ([], [], 0)
    eval_rows, _, eval_tokens = _capture_rows(
        lm, formatter, eval_selected, config.layer, config.batch_size,
        f"{description}: held-out") if eval_selected else ([], [], 0)

    dtype = position_rows.dtype if prompts else (rows[0].dtype if rows else torch.float32)
    parts = [r.to(dtype) for r in rows] + ([pos_block.to(dtype)] if n_pos_block else [])
    code_parts = codes + ([torch.full((n_pos_block,), SOURCES.index("position"), dtype=torch.int8)]
                          if n_pos_block else [])
    if not parts:
        raise UserError("the SAE corpus is empty after applying the row cap")
    train = torch.cat(parts)
    source = torch.cat(code_parts)
    eval_all = torch.cat([r.to(dtype) for r in eval_rows]) if eval_rows else None

    corpus = ActivationCorpus(
        train=train, source=source, position_rows=position_rows,
        position_ids=[p.id for p in prompts], heldout_ids=[p.id for p in heldout],
        eval_position=eval_position, eval_all=eval_all, stats={})
    corpus.stats = {
        "layer": config.layer,
        "position": config.position,
        "n_rows": int(train.shape[0]),
        "max_rows": config.max_rows,
        "rows_by_source": corpus.source_counts(),
        "n_prompts": len(prompts),
        "n_train_prompts": len(train_prompts),
        "n_heldout_prompts": len(heldout),
        "oversample": oversample,
        "oversample_requested": config.oversample,
        "position_share": n_pos_block / max(1, int(train.shape[0])),
        "shared_prefix_tokens": len(prefix),
        "prefix_rows_dropped": dropped_prefix_rows,
        "n_sequences_available": len(pool),
        "n_sequences_used": len(selected),
        "n_file_documents": len(docs),
        "n_file_chunks": len(file_seqs),
        "n_file_chunks_used": sum(1 for s in selected if s.kind == "file"),
        "tokens_processed": tokens + eval_tokens,
        "n_eval_rows": 0 if eval_all is None else int(eval_all.shape[0]),
        "include_responses": config.include_responses,
        "n_responses": sum(1 for p in train_prompts if p.response),
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": round(time.perf_counter() - start_time, 2),
    }
    return corpus


__all__ = [
    "SOURCES",
    "ActivationCorpus",
    "CorpusConfig",
    "CorpusPrompt",
    "collect_corpus",
    "is_heldout",
    "read_corpus_files",
    "shared_prefix_length",
]
