"""Residual-stream activations at (layer, position), extracted in batches and cached on disk.

The forward pass stops right after the deepest layer it needs (see
:func:`hooks.run_capture`), so reading layer 12 of a 24-layer model costs about half a
forward pass and never touches the LM head.

The cache is keyed by model (weights and dtype), layer, position and a hash of the exact
token ids fed to the model, so a change of chat template, system prompt or truncation
is a different key, never a stale hit. Each extraction call appends one safetensors shard;
an index of keys is read from the shards' headers.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open

from .artifacts import read_tensor_file, unreadable, write_tensors
from .chat import ChatFormatter, pad_left, resolve_position
from .generation import length_sorted_batches
from .hooks import run_capture
from .kv import prefixed_inputs
from .paths import writable_cache_dir, writable_dir
from .progress import progress_bar


class ActivationCache:
    """On-disk activations for one model, one folder per (layer, position)."""

    def __init__(self, root: str | Path | None, model_key: str):
        self.root = (writable_dir(Path(root).expanduser(), "the activation cache "
                                  "(activations.cache_dir)",
                                  "set activations.cache_dir to a writable folder")
                     if root is not None else writable_cache_dir() / "activations")
        self.model_dir = self.root / model_key
        self._index: dict[tuple[int, int], dict[str, tuple[Path, int]]] = {}

    def _dir(self, layer: int, position: int) -> Path:
        return self.model_dir / f"L{layer}_P{position}"

    def _load_index(self, layer: int, position: int) -> dict[str, tuple[Path, int]]:
        key = (layer, position)
        if key not in self._index:
            index: dict[str, tuple[Path, int]] = {}
            folder = self._dir(layer, position)
            for shard in sorted(folder.glob("*.safetensors")) if folder.exists() else []:
                try:
                    with safe_open(str(shard), framework="pt") as fh:
                        keys = json.loads((fh.metadata() or {}).get("keys", "[]"))
                except Exception:  # noqa: BLE001 - a damaged shard is only a cache miss
                    continue
                for row, k in enumerate(keys):
                    index[k] = (shard, row)
            self._index[key] = index
        return self._index[key]

    def get(self, layer: int, position: int, keys: Sequence[str]) -> dict[str, torch.Tensor]:
        index = self._load_index(layer, position)
        by_shard: dict[Path, list[tuple[str, int]]] = {}
        for k in keys:
            if k in index:
                shard, row = index[k]
                by_shard.setdefault(shard, []).append((k, row))
        found: dict[str, torch.Tensor] = {}
        for shard, items in by_shard.items():
            with safe_open(str(shard), framework="pt") as fh:
                acts = fh.get_tensor("acts")
            for k, row in items:
                found[k] = acts[row]
        return found

    def put(self, layer: int, position: int, keys: Sequence[str], acts: torch.Tensor) -> None:
        if not keys:
            return
        shard = self._dir(layer, position) / f"{uuid.uuid4().hex}.safetensors"
        write_tensors(shard, {"acts": acts}, metadata={"keys": json.dumps(list(keys))})
        index = self._load_index(layer, position)
        for row, k in enumerate(keys):
            index[k] = (shard, row)


def extract_activations(
    lm,
    formatter: ChatFormatter,
    prompts: Sequence[str],
    layers: Sequence[int],
    positions: Sequence[int] = (-2,),
    *,
    batch_size: int = 32,
    cache: ActivationCache | None = None,
    description: str = "activations",
    share_prefix: bool = True,
) -> torch.Tensor:
    """Activations ``[n_prompts, n_layers, n_positions, d_model]`` (float32), in prompt order.

    Each forward pass stops after the deepest requested layer (``resid_pre`` of each layer).

    Args:
        lm: a :class:`~refusal_atlas.models.LoadedModel`.
        formatter: how prompts are chat-formatted.
        prompts: user messages.
        layers: ``resid_pre`` layers (Hugging Face block indices).
        positions: token positions from the end of each formatted prompt.
        batch_size: prompts per forward pass (speed only).
        cache: an :class:`ActivationCache` to read from and fill (optional).
        share_prefix: compute the prompt prefix every row shares (the chat template's
            system turn) once per batch (:func:`~.kv.prefill_shared_prefix`).

    Example:
        >>> acts = extract_activations(lm, ChatFormatter(lm.tokenizer), ["Hi"], [6, 12])  # doctest: +SKIP
        >>> acts.shape  # doctest: +SKIP
        torch.Size([1, 2, 1, 896])
    """
    layers = [int(layer) for layer in layers]
    positions = [int(p) for p in positions]
    encoded = [formatter.encode(p) for p in prompts]
    if encoded:
        resolve_position(min(positions), [len(e) for e in encoded], max(len(e) for e in encoded))
    keys = [formatter.prompt_key(p) for p in prompts]
    out = torch.empty(len(prompts), len(layers), len(positions), lm.d_model, dtype=torch.float32)

    todo = set(range(len(prompts)))
    if cache is not None:
        todo = _fill_from_cache(cache, keys, layers, positions, out)
    todo_list = sorted(todo)
    # One shard per (layer, position) per call, written even when the call is interrupted.
    pending: dict[tuple[int, int], tuple[list[str], list[torch.Tensor]]] = {}
    try:
        with progress_bar(description, total=len(todo_list), unit="prompt") as bar:
            for group in length_sorted_batches([len(encoded[i]) for i in todo_list], batch_size):
                rows = [todo_list[g] for g in group]
                batch = pad_left([encoded[i] for i in rows], formatter.pad_id).to(lm.device)
                acts = _capture(lm.model, batch, layers, positions, share_prefix)
                for li, layer in enumerate(layers):
                    out[rows, li] = acts[layer].float().cpu()
                    for pi, position in enumerate(positions):
                        row_keys, tensors = pending.setdefault((layer, position), ([], []))
                        row_keys.extend(keys[i] for i in rows)
                        tensors.append(acts[layer][:, pi].cpu())
                bar.advance(len(rows))
    finally:
        if cache is not None:
            for (layer, position), (row_keys, tensors) in pending.items():
                cache.put(layer, position, row_keys, torch.cat(tensors))
    return out


def _capture(model, batch, layers: list[int], positions: list[int],
             share_prefix: bool) -> dict[int, torch.Tensor]:
    inputs, _ = prefixed_inputs(model, batch, share_prefix=share_prefix,
                                min_suffix=-min(positions), up_to_layer=max(layers))
    return run_capture(model, layers=layers, positions=positions, **inputs)


def _fill_from_cache(cache: ActivationCache, keys: list[str], layers: list[int],
                     positions: list[int], out: torch.Tensor) -> set[int]:
    """Copy every row whose (layer, position) activations are all cached; return the rest."""
    missing: set[int] = set()
    found = {(layer, pos): cache.get(layer, pos, keys) for layer in layers for pos in positions}
    for i, key in enumerate(keys):
        if all(key in found[(layer, pos)] for layer in layers for pos in positions):
            for li, layer in enumerate(layers):
                for pi, pos in enumerate(positions):
                    out[i, li, pi] = found[(layer, pos)][key].float()
        else:
            missing.add(i)
    return missing


# ---------------------------------------------------------------------------
# Run-folder stage


def save_activation_table(path: Path, ids: Sequence[str], acts: torch.Tensor, *, layer: int,
                          position: int) -> Path:
    return write_tensors(path, {"acts": acts.float()},
                         metadata={"ids": json.dumps(list(ids)), "layer": str(layer),
                                   "position": str(position)})


def load_activation_table(path: Path) -> tuple[list[str], torch.Tensor, dict]:
    """``(prompt ids, [n, d] activations, metadata)`` of :func:`save_activation_table`."""
    tensors, meta = read_tensor_file(path)
    if "acts" not in tensors or "ids" not in meta:
        raise unreadable(path, "not an activation table")
    return json.loads(meta["ids"]), tensors["acts"], meta
