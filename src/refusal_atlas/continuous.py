"""Continuous batching: rows join the running batch as others finish.

A decoding step has a fixed part (the weights are read once per step whatever the batch):
a bf16 step of Qwen2.5-0.5B on 2 CPU cores costs ~120 ms for one row, ~170 ms for 32 and
~250 ms for 64. A batch that shrinks as rows stop pays that fixed part for ever fewer rows.
Here at most ``max_active`` rows decode together; when a quarter of the slots are free the
next rows are prefilled and join the running KV cache (left-padded to the same slot), so
the batch stays full until the rows run out. (Above ~32 rows that CPU's step cost grows
about linearly in rows, so there the measured gain is a few percent.)

The shared chat-template prefix is computed once per call for each group of
identically-intervened rows (:func:`~.hooks.row_groups`) and copied to every row that
joins, instead of once per batch and group. Rows of one prompt joining together run the
blocks before the first intervention once (:mod:`~.trunk`).

Per-row interventions hold one row per row of the call; every forward narrows them to the
rows it runs (:func:`~.hooks.rows_subset`), so rows can join in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import hooks
from .kv import (
    PrefixGroups,
    cache_kwarg,
    gather_rows,
    join_rows,
    new_cache,
    prefill_prefix_groups,
    rows_mergeable,
    suffix_inputs,
    trim_left,
)
from .trunk import prefill_sharing_trunk

REFILL_FRACTION = 4
"""Rows join when at least 1/REFILL_FRACTION of the slots are free: fewer, larger prefills
(one forward each) against slots left idle meanwhile."""


@dataclass
class _Running:
    rows: torch.Tensor
    """Call row of every batch row."""
    cache: object
    mask: torch.Tensor
    next_pos: torch.Tensor
    token: torch.Tensor
    """The token each row emitted last, fed at the next step."""


class Decoder:
    """Greedy decoding of one call's rows (token lists), at most ``max_active`` at a time."""

    def __init__(self, model, rows: Sequence[Sequence[int]], pad_id: int, *,
                 max_new_tokens: int, stop_ids: Sequence[int], max_active: int,
                 share_prefix: bool, drop_finished: bool, capture=None,
                 stop_when: Callable[[list[int]], bool] | None = None,
                 on_step: Callable[[int], None] | None = None):
        self.model = model
        self.rows = [list(r) for r in rows]
        self.pad_id = pad_id
        self.max_new = max_new_tokens
        self.device = next(model.parameters()).device
        self.stop = {int(t) for t in stop_ids}
        self.drop = drop_finished
        self.capture = capture
        self.on_step = on_step
        self.stop_when = stop_when
        if capture is not None:
            capture.acts = {}  # filled row by row as rows join
        self.cache_arg = cache_kwarg(model)
        n = len(self.rows)
        # Joining needs plain per-slot caches; without them every row starts at once.
        self.joinable = rows_mergeable(model)
        self.max_active = max(1, max_active) if drop_finished and self.joinable else n
        self.out: list[list[int]] = [[] for _ in range(n)]
        # captured positions must lie in the rows' own tokens, after the shared prefix
        self.own = max(1, -min(capture.positions)) if capture is not None else 1
        self.prefix = self._shared_prefix() if share_prefix else None
        # replaying blocks into a cache needs per-slot caches too
        self.share_trunk = share_prefix and self.joinable

    # -- prefix -----------------------------------------------------------------------

    def _shared_prefix(self) -> PrefixGroups | None:
        if not self.joinable:  # copying the prefix to joining rows needs per-slot caches
            return None
        return prefill_prefix_groups(self.model, self.rows, device=self.device,
                                     min_suffix=self.own)

    # -- rows joining -----------------------------------------------------------------

    def _prefill(self, take: list[int]) -> _Running | None:
        """Prefill rows ``take``; their first tokens are emitted. Returns those still going."""
        index = torch.tensor(take, device=self.device)
        p = self.prefix.length if self.prefix is not None else 0
        ids, mask, positions = suffix_inputs([self.rows[i] for i in take], p, self.pad_id,
                                             self.device)
        cache = (gather_rows(self.model, self.prefix.cache, self.prefix.group[index])
                 if self.prefix is not None else new_cache(self.model))
        capture = self.capture
        with hooks.rows_subset(self.model, index):
            if capture is not None:
                with hooks.capture_resid_pre(self.model, capture.layers,
                                             capture.positions) as captured:
                    logits = self._prefill_forward(ids, mask, positions, cache)
                self._keep_capture(index, captured.acts)
            else:
                logits = self._prefill_forward(ids, mask, positions, cache)
        running = _Running(index, cache, mask, positions[:, -1] + 1, logits[:, -1].max(-1).indices)
        return self._emit(running)

    def _prefill_forward(self, ids, mask, positions, cache) -> torch.Tensor:
        logits = None
        if self.share_trunk:  # rows of one prompt under other interventions
            logits = prefill_sharing_trunk(self.model, ids, mask, positions, cache)
        return self._forward(ids, mask, positions, cache) if logits is None else logits

    def _keep_capture(self, index: torch.Tensor, acts: dict[int, torch.Tensor]) -> None:
        for layer, a in acts.items():
            full = self.capture.acts.get(layer)
            if full is None:
                full = a.new_zeros(len(self.rows), *a.shape[1:])
                self.capture.acts[layer] = full
            full[index] = a

    # -- decoding ---------------------------------------------------------------------

    def _forward(self, ids, mask, positions, cache) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                          use_cache=True, logits_to_keep=1, **{self.cache_arg: cache}).logits

    def _emit(self, run: _Running) -> _Running | None:
        """Record each row's new token; rows that stop leave the batch."""
        rows = run.rows.tolist()
        for row, tok in zip(rows, run.token.tolist()):
            if not self.drop and self._finished(row):
                continue
            self.out[row].append(tok)
        if self.on_step is not None:
            self.on_step(len(rows))
        done = torch.tensor([self._finished(r) for r in rows], device=self.device)
        if bool(done.all()):
            return None
        if self.drop and bool(done.any()):
            keep = (~done).nonzero().squeeze(-1)
            run.cache.batch_select_indices(keep)
            run.rows, run.token = run.rows[keep], run.token[keep]
            run.mask, run.next_pos = run.mask[keep], run.next_pos[keep]
            run.mask = trim_left(run.cache, run.mask)
        return run

    def _finished(self, row: int) -> bool:
        ids = self.out[row]
        return (len(ids) >= self.max_new or (bool(ids) and ids[-1] in self.stop)
                or (self.stop_when is not None and bool(ids) and self.stop_when(ids)))

    def _step(self, run: _Running) -> _Running | None:
        run.mask = torch.cat([run.mask, torch.ones_like(run.mask[:, :1])], dim=1)
        with hooks.rows_subset(self.model, run.rows):
            logits = self._forward(run.token[:, None], run.mask, run.next_pos[:, None],
                                   run.cache)
        run.token = logits[:, -1].max(-1).indices
        run.next_pos = run.next_pos + 1
        return self._emit(run)

    def run(self) -> list[list[int]]:
        pending = list(range(len(self.rows)))
        run: _Running | None = None
        refill = max(1, self.max_active // REFILL_FRACTION)
        while pending or run is not None:
            free = self.max_active - (0 if run is None else len(run.rows))
            if pending and (run is None or free >= refill):
                take, pending = pending[:free], pending[free:]
                joined = self._prefill(take)
                if run is None:
                    run = joined
                elif joined is not None:
                    run.cache, run.mask = join_rows(run.cache, run.mask,
                                                    joined.cache, joined.mask)
                    run.rows = torch.cat([run.rows, joined.rows])
                    run.token = torch.cat([run.token, joined.token])
                    run.next_pos = torch.cat([run.next_pos, joined.next_pos])
                continue
            run = self._step(run)
        if not self.drop:
            self.out = [_cut_at_stop(ids, self.stop) for ids in self.out]
        return self.out


def _cut_at_stop(ids: list[int], stop: set[int]) -> list[int]:
    for i, tok in enumerate(ids):
        if tok in stop:
            return ids[: i + 1]
    return ids
