"""All model surgery: capture, add and ablate, as reversible context managers.

Conventions
-----------
* ``resid_pre`` of layer ``L`` is the input of ``model.layers[L]`` (Hugging Face's
  ``hidden_states[L]``). ``L == n_layers`` is the final residual stream, read at the
  input of the final norm.
* Every manager registers PyTorch hooks on entry and removes them on exit, even when
  the body raises; nothing else about the model changes, except inside
  :func:`replay_blocks`, which stands in for early blocks' ``forward`` and restores it on
  exit. Module lookup (``decoder_layers``, ``resid_pre_module``, ...) lives in
  :mod:`~.blocks` and is re-exported here.
* Vectors may be shared (``[d]``) or per row (``[B, d]``). Per-row state is kept in a
  :class:`RowVectors` so that a generation loop that drops finished rows can call
  :func:`select_rows` and every active intervention follows the batch.
* Interventions apply at every position they see: the whole prompt on the prefill pass,
  then each new token when a KV cache is used (earlier positions are already in the cache,
  computed under the same intervention). Padding positions are modified too, which is
  harmless: padded keys are masked out of attention.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

# Locating modules (re-exported: callers reach them as hooks.decoder_layers, ...)
from .blocks import (  # noqa: F401
    decoder_layers,
    final_norm,
    n_layers,
    resid_pre_module,
    sublayer_output_modules,
)
from .chat import position_ids_from_mask
from .errors import UserError

# ---------------------------------------------------------------------------
# Per-row state that follows the batch


class RowVectors:
    """A ``[B, d]`` tensor of per-row vectors (or a shared ``[d]`` one)."""

    def __init__(self, vectors: torch.Tensor):
        if vectors.dim() not in (1, 2):
            raise ValueError(f"expected [d] or [B, d] vectors, got shape {tuple(vectors.shape)}")
        self.vectors = vectors.detach()
        self._cast: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    @property
    def per_row(self) -> bool:
        return self.vectors.dim() == 2

    def select(self, index: torch.Tensor) -> None:
        if self.per_row:
            self.vectors = self.vectors.index_select(0, index.to(self.vectors.device))
            self._cast.clear()

    def like(self, hidden: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The vectors shaped to broadcast against ``hidden`` [B, T, d]."""
        dtype = dtype or hidden.dtype
        key = (dtype, hidden.device)
        vec = self._cast.get(key)
        if vec is None:
            vec = self.vectors.to(device=hidden.device, dtype=dtype)
            self._cast[key] = vec
        if self.per_row:
            if vec.shape[0] != hidden.shape[0]:
                raise RuntimeError(
                    f"per-row intervention has {vec.shape[0]} rows but the batch has "
                    f"{hidden.shape[0]}; call hooks.select_rows when dropping rows")
            return vec[:, None, :]
        return vec


_ROW_STATE: "weakref.WeakKeyDictionary[nn.Module, list[RowVectors]]" = weakref.WeakKeyDictionary()


def select_rows(model: nn.Module, index: torch.Tensor) -> None:
    """Keep only rows ``index`` in every active per-row intervention on ``model``."""
    for state in _ROW_STATE.get(model, []):
        state.select(index)


@contextmanager
def preserve_rows(model: nn.Module) -> Iterator[None]:
    """Restore every per-row intervention's full batch after a loop that drops rows."""
    saved = [(state, state.vectors) for state in _ROW_STATE.get(model, [])]
    try:
        yield
    finally:
        for state, vectors in saved:
            state.vectors = vectors
            state._cast.clear()


def row_groups(model: nn.Module, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose active interventions are identical: ``(representatives, group_of_row)``.

    Two rows of a batch compute the same hidden states for the same tokens exactly when
    every per-row intervention holds the same vector for both (shared interventions are
    the same for every row by construction), so a shared prompt prefix needs computing
    once per group. Relies on the convention that all per-row state is a
    :class:`RowVectors`.
    """
    states = [s for s in _ROW_STATE.get(model, []) if s.per_row]
    if not states:
        return torch.zeros(1, dtype=torch.long), torch.zeros(n_rows, dtype=torch.long)
    return distinct_rows(torch.cat([s.vectors.reshape(n_rows, -1).float().cpu()
                                    for s in states], dim=1))


def distinct_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)`` for the distinct rows of ``t`` ``[N, ...]``: the index of each
    one's first occurrence, and which distinct row each row is."""
    _, inverse = torch.unique(t, dim=0, return_inverse=True)
    n = t.shape[0]
    first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long, device=t.device)
    first.scatter_reduce_(0, inverse, torch.arange(n, device=t.device), reduce="amin")
    return first, inverse


@contextmanager
def rows_subset(model: nn.Module, index: torch.Tensor) -> Iterator[None]:
    """Every per-row intervention narrowed to rows ``index`` inside the block, restored after."""
    with preserve_rows(model):
        select_rows(model, index)
        yield


@contextmanager
def _tracked(model: nn.Module, states: Sequence[RowVectors]) -> Iterator[None]:
    registry = _ROW_STATE.setdefault(model, [])
    registry.extend(states)
    try:
        yield
    finally:
        for state in states:
            registry.remove(state)


# ---------------------------------------------------------------------------
# Hook plumbing


def _hidden_from_inputs(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    return kwargs["hidden_states"]


def _replace_inputs(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (hidden, *args[1:]), kwargs
    kwargs = dict(kwargs)
    kwargs["hidden_states"] = hidden
    return args, kwargs


def _map_output(output: Any, fn) -> Any:
    if isinstance(output, torch.Tensor):
        return fn(output)
    if isinstance(output, tuple):
        return (fn(output[0]), *output[1:])
    raise TypeError(f"unexpected sub-layer output type {type(output).__name__}")


@contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _as_rows(vectors: torch.Tensor | RowVectors) -> RowVectors:
    return vectors if isinstance(vectors, RowVectors) else RowVectors(torch.as_tensor(vectors))


# ---------------------------------------------------------------------------
# Capture


class StopForward(Exception):
    """Raised by a capture hook once every requested layer is read; caught by the caller."""


class Capture:
    """Activations read by :func:`capture_resid_pre`, keyed by layer."""

    def __init__(self) -> None:
        self.acts: dict[int, torch.Tensor] = {}


@contextmanager
def capture_resid_pre(model: nn.Module, layers: Sequence[int],
                      positions: Sequence[int] | None = None, *,
                      stop: bool = False, first: bool = False) -> Iterator[Capture]:
    """Record ``resid_pre`` of ``layers`` (at negative ``positions``, or all if None).

    With ``stop=True`` the hook of the deepest requested layer raises :class:`StopForward`
    after reading it, so no later layer (nor the LM head) runs; use :func:`run_capture`.
    ``first``: read before the other hooks on those layers (interventions there) apply.
    """
    layers = sorted(set(int(layer) for layer in layers))
    if not layers:
        raise UserError("no layers to capture")
    capture = Capture()
    pos_index = None if positions is None else [int(p) for p in positions]
    handles = []
    for layer in layers:
        module = resid_pre_module(model, layer)

        def hook(_module, args, kwargs, layer=layer):
            hidden = _hidden_from_inputs(args, kwargs)
            picked = hidden if pos_index is None else hidden[:, pos_index, :]
            capture.acts[layer] = picked.detach()
            if stop and layer == layers[-1]:
                raise StopForward
            return None

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True, prepend=first))
    with _hooks(handles):
        yield capture


@torch.no_grad()
def run_capture(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                layers: Sequence[int], positions: Sequence[int] | None = None, *,
                position_ids: torch.Tensor | None = None,
                **cache_kwargs: Any) -> dict[int, torch.Tensor]:
    """One forward pass that stops after the deepest requested layer; returns ``{layer: acts}``.

    ``cache_kwargs`` (the model's cache argument holding a prefix already computed, see
    :func:`~.kv.prefill_shared_prefix`) continue that prefix; ``attention_mask`` then
    covers prefix and ``input_ids`` and ``position_ids`` must be given.
    """
    if position_ids is None:
        position_ids = position_ids_from_mask(attention_mask)
    with capture_resid_pre(model, layers, positions, stop=True) as capture:
        try:
            model(input_ids=input_ids, attention_mask=attention_mask,
                  position_ids=position_ids, use_cache=bool(cache_kwargs), **cache_kwargs)
        except StopForward:
            pass
    missing = set(int(layer) for layer in layers) - set(capture.acts)
    if missing:
        raise RuntimeError(f"capture hooks did not fire for layers {sorted(missing)}")
    return capture.acts


# ---------------------------------------------------------------------------
# Interventions


@contextmanager
def add_to_resid_pre(model: nn.Module, layer: int, vectors: torch.Tensor | RowVectors,
                     alpha: float | torch.Tensor = 1.0) -> Iterator[RowVectors]:
    """x <- x + alpha * v at ``resid_pre`` of ``layer``, every position.

    ``vectors`` is ``[d]`` or ``[B, d]``; ``alpha`` a float or ``[B]``. ``alpha = 0`` adds
    exact zeros, so the output is bit-identical to running without the hook.
    """
    vec = vectors.vectors if isinstance(vectors, RowVectors) else torch.as_tensor(vectors)
    alpha_t = torch.as_tensor(alpha, dtype=torch.float32)
    if alpha_t.dim() == 1:
        vec = alpha_t[:, None] * (vec.float() if vec.dim() == 2 else vec.float()[None, :])
    else:
        vec = alpha_t * vec.float()
    rows = RowVectors(vec)
    module = resid_pre_module(model, layer)

    def hook(_module, args, kwargs):
        hidden = _hidden_from_inputs(args, kwargs)
        return _replace_inputs(args, kwargs, hidden + rows.like(hidden))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    with _hooks([handle]), _tracked(model, [rows]):
        yield rows


def _project_out(hidden: torch.Tensor, directions: RowVectors) -> torch.Tensor:
    # In float32: a bf16 dot product over thousands of dimensions loses the component
    # we are trying to remove.
    d = directions.like(hidden, torch.float32)
    x = hidden.float()
    return (x - (x * d).sum(-1, keepdim=True) * d).to(hidden.dtype)


@contextmanager
def ablate_direction(model: nn.Module, directions: torch.Tensor | RowVectors,
                     layers: Sequence[int] | None = None) -> Iterator[RowVectors]:
    """x <- x - (x . d) d at every block input and every attention / MLP contribution.

    ``directions`` are unit vectors, ``[d]`` or ``[B, d]``; a zero row leaves its row
    untouched exactly. ``layers`` restricts the blocks (default: all).
    """
    raw = directions.vectors if isinstance(directions, RowVectors) else torch.as_tensor(directions)
    norms = raw.float().norm(dim=-1)
    if ((norms > 0) & ((norms - 1).abs() > 1e-3)).any():
        raise ValueError("ablation directions must be unit vectors (or zero rows for no ablation)")
    rows = RowVectors(raw.float())
    with _project_everywhere(model, layers, lambda h: _project_out(h, rows), [rows]):
        yield rows


@contextmanager
def _project_everywhere(model: nn.Module, layers: Sequence[int] | None,
                        project: Callable[[torch.Tensor], torch.Tensor],
                        states: Sequence[RowVectors]) -> Iterator[None]:
    """``project`` applied at the input of every chosen block and to every attention / MLP
    output inside it (directional ablation's placement), ``states`` tracked per row."""
    chosen = range(len(decoder_layers(model))) if layers is None else layers
    handles = []

    def pre_hook(_module, args, kwargs):
        return _replace_inputs(args, kwargs, project(_hidden_from_inputs(args, kwargs)))

    def out_hook(_module, _args, output):
        return _map_output(output, project)

    for index in chosen:
        block = resid_pre_module(model, index)
        handles.append(block.register_forward_pre_hook(pre_hook, with_kwargs=True))
        for sub in sublayer_output_modules(block):
            handles.append(sub.register_forward_hook(out_hook))
    with _hooks(handles), _tracked(model, states):
        yield


def _project_out_basis(hidden: torch.Tensor, basis: Sequence[RowVectors]) -> torch.Tensor:
    # One float32 projection onto the span's complement (not k casts back to bf16 between
    # single projections, which would let rounding leak the removed components back in).
    x = hidden.float()
    removed = torch.zeros_like(x)
    for rows in basis:
        u = rows.like(hidden, torch.float32)
        removed = removed + (x * u).sum(-1, keepdim=True) * u
    return (x - removed).to(hidden.dtype)


@contextmanager
def ablate_subspace(model: nn.Module, basis: torch.Tensor,
                    layers: Sequence[int] | None = None) -> Iterator[list[RowVectors]]:
    """x <- x - U^T U x at every block input and every attention / MLP contribution: the
    span of ``basis`` projected out, as :func:`ablate_direction` does for one direction.

    ``basis`` is ``[k, d]`` (shared) or ``[B, k, d]`` (per row) with orthonormal rows; zero
    rows are allowed (a row of the batch with a smaller subspace, or none, pads with zeros
    and is untouched there exactly). Each basis vector is one :class:`RowVectors`, so
    :func:`select_rows` keeps the batch in step when a generation loop drops rows.

    Example::

        q = torch.linalg.qr(torch.randn(d, 3)).Q.T          # [3, d] orthonormal
        with ablate_subspace(lm.model, q):
            ids = greedy_generate(lm.model, batch, max_new_tokens=16)
    """
    raw = torch.as_tensor(basis).detach().float()
    if raw.dim() not in (2, 3):
        raise ValueError(f"expected a [k, d] or [B, k, d] basis, got shape {tuple(raw.shape)}")
    rows3 = raw if raw.dim() == 3 else raw[None]
    nonzero = (rows3.norm(dim=-1) > 0).float()
    gram = rows3 @ rows3.transpose(1, 2)
    if (gram - torch.diag_embed(nonzero)).abs().max() > 1e-3:
        raise ValueError("the basis of an ablated subspace must have orthonormal rows "
                         "(or zero rows)")
    states = [RowVectors(raw[..., j, :]) for j in range(raw.shape[-2])]
    with _project_everywhere(model, layers, lambda h: _project_out_basis(h, states), states):
        yield states


@contextmanager
def edit_resid_pre(model: nn.Module, layer: int,
                   fn: Callable[[torch.Tensor], torch.Tensor],
                   rows: torch.Tensor | Sequence[bool] | None = None) -> Iterator[None]:
    """x <- fn(x) at ``resid_pre`` of ``layer``, every position.

    ``fn`` maps a ``[B, T, d]`` hidden state to one of the same shape and must act on each
    position on its own (e.g. an SAE's encode/decode), so left padding and the KV cache do
    not change what it does to a real token. ``rows`` (``[B]`` booleans) limits the edit to
    those rows; the others keep their hidden state exactly. The row mask follows
    :func:`select_rows`.

    Example:
        >>> with edit_resid_pre(model, 3, lambda h: 0.5 * h):  # doctest: +SKIP
        ...     model(input_ids)
    """
    mask = None if rows is None else RowVectors(torch.as_tensor(rows, dtype=torch.float32)[:, None])
    module = resid_pre_module(model, layer)

    def hook(_module, args, kwargs):
        hidden = _hidden_from_inputs(args, kwargs)
        edited = fn(hidden)
        if mask is not None:
            edited = torch.where(mask.like(hidden) > 0, edited, hidden)
        return _replace_inputs(args, kwargs, edited)

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    with _hooks([handle]), _tracked(model, [mask] if mask is not None else []):
        yield


# ---------------------------------------------------------------------------
# Blocks run once for several rows


def _acts(hook: Callable) -> bool:
    # transformers installs these once a call asks for hidden states or attentions, and
    # they record only while such a call runs (never in ours)
    return not (getattr(hook, "__name__", "") == "output_capturing_hook"
                and getattr(hook, "__module__", "").startswith("transformers."))


def first_hooked_block(model: nn.Module) -> int:
    """The first decoder block with a hook anywhere in it (``n_layers`` if none, 0 with a
    global module hook): every block before it computes what it would with no hook at all."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return 0
    blocks = decoder_layers(model)
    for index, block in enumerate(blocks):
        for m in block.modules():
            if any(map(_acts, [*m._forward_hooks.values(), *m._forward_pre_hooks.values()])):
                return index
    return len(blocks)


@contextmanager
def tensor_outputs(model: nn.Module, block: int) -> Iterator[list[bool]]:
    """Per forward inside: whether block ``block`` returned a plain tensor, the output
    :func:`replay_blocks` stands in for (a block returning a tuple cannot be replayed)."""
    seen: list[bool] = []
    handle = decoder_layers(model)[block].register_forward_hook(
        lambda _m, _a, out: seen.append(isinstance(out, torch.Tensor)))
    with _hooks([handle]):
        yield seen


@contextmanager
def replay_blocks(model: nn.Module, upto: int, hidden: torch.Tensor) -> Iterator[None]:
    """Blocks ``0..upto-1`` do not run: each returns ``hidden``, the input of block ``upto``
    already computed (for other rows with the same tokens, :mod:`~.trunk`). Their keys and
    values are not written to the KV cache; the caller puts them there."""
    blocks = list(decoder_layers(model))[:upto]
    saved = [block.__dict__.get("forward") for block in blocks]

    def replayed(*_args, **_kwargs):
        return hidden

    for block in blocks:
        block.forward = replayed
    try:
        yield
    finally:
        for block, forward in zip(blocks, saved):
            if forward is None:
                del block.forward
            else:
                block.forward = forward


def active_hook_count(model: nn.Module) -> int:
    """Number of forward (pre-)hooks registered anywhere in ``model``; for leak checks."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
