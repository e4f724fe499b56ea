"""Rows that repeat a prompt under different interventions share the blocks before them.

A steering sweep runs each test prompt under every condition, and a condition that adds
a vector at ``resid_pre`` of block ``L`` leaves blocks ``0..L-1`` computing exactly what
they compute unsteered. So in a prefill whose rows repeat prompts, :func:`prefill_sharing_trunk`
runs those blocks once per distinct prompt (the "trunk"), then runs the full batch from
block ``L`` on, with the trunk's output replayed into it (:func:`~.hooks.replay_blocks`) and
the trunk's keys and values copied into every row's cache. ``L`` is the first block with a
hook (:func:`~.hooks.first_hooked_block`), so any intervention, capture or ablation is
respected: directional ablation hooks block 0 and shares nothing.

On the demo's steering (34 conditions per prompt, ``L`` = 12 of 24 blocks) this is half
the prefill. It is the same computation in another batch: float32 agrees to rounding.
"""

from __future__ import annotations

import torch

from . import hooks
from .kv import cache_kwarg, copy_layers, gather_rows

MIN_SHARED_BLOCKS = 2
"""Fewer shared blocks do not pay for the extra forward call."""


@torch.no_grad()
def prefill_sharing_trunk(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          position_ids: torch.Tensor, cache) -> torch.Tensor | None:
    """The last position's logits ``[B, 1, V]`` of a prefill that continues ``cache``
    (plain per-slot layers, :func:`~.kv.rows_mergeable`), with rows of identical tokens
    running the blocks before the first hooked one once. The cache ends as a plain forward
    leaves it. Returns None, with nothing run, when no rows repeat or fewer than
    :data:`MIN_SHARED_BLOCKS` blocks precede the first hook; the caller then runs the
    plain forward.

    Rows with the same ``input_ids`` must also have the same mask, positions and cached
    keys and values in those blocks (rows of one prompt under different interventions).
    """
    upto = hooks.first_hooked_block(model)
    if upto < MIN_SHARED_BLOCKS or upto >= hooks.n_layers(model):
        return None
    first, inverse = hooks.distinct_rows(input_ids)
    if first.shape[0] == input_ids.shape[0]:
        return None
    arg = cache_kwarg(model)
    trunk = gather_rows(model, cache, first)
    with hooks.tensor_outputs(model, upto - 1) as returns_tensor, \
            hooks.capture_resid_pre(model, [upto], None, stop=True, first=True) as captured:
        try:
            model(input_ids=input_ids[first], attention_mask=attention_mask[first],
                  position_ids=position_ids[first], use_cache=True, **{arg: trunk})
        except hooks.StopForward:
            pass
    if returns_tensor != [True]:
        return None
    hidden = captured.acts[upto].index_select(0, inverse)
    with hooks.replay_blocks(model, upto, hidden):
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=position_ids, use_cache=True, logits_to_keep=1,
                       **{arg: cache}).logits
    copy_layers(trunk, cache, range(upto), inverse)
    return logits


__all__ = ["MIN_SHARED_BLOCKS", "prefill_sharing_trunk"]
