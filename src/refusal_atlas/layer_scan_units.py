"""The layer scan's work units, run by an executor (:mod:`~refusal_atlas.sweeps.executors`).

Two kinds of unit, each with a task that runs it on a model:

* activation shards (:class:`ActivationShards`): prompts whose ``resid_pre`` activations the
  scan reads at every scanned layer;
* induce layers (:class:`InduceLayers`): one candidate layer of the causal check, scored on
  the same batch of benign prompts.

A local executor (``executor.remote`` false) runs the tasks here, on the driver's model, as
the plain library calls did: all activations in one unit (one
:func:`~.activations.extract_activations` call with its cache: no copy, no extra forward
pass) and one forward pass per candidate layer plus one shared baseline pass. A remote
executor ships ``worker_spec()`` (plain data: the model's load arguments, the formatter's
settings, the prompts) to workers that each hold a model replica and rebuild the task with
:func:`activations_worker` / :func:`induce_worker` (registered in
``sweeps.worker.WORKER_TASKS``); activations are then cut into one shard per forward-pass
batch, exactly the batches of the local run, so the numbers are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from .activations import ActivationCache, extract_activations
from .chat import ChatFormatter, pad_left, resolve_position
from .errors import UserError
from .generation import length_sorted_batches
from .layer_scan import BasePass, base_pass, induce_scores
from .progress import progress_bar


def _load_args(lm) -> dict[str, Any]:
    load_args = getattr(lm, "load_args", None)
    if not load_args:
        raise UserError("a remote executor needs a model loaded by load_model() (it loads "
                        "the same model again in every worker)")
    return dict(load_args)


def _formatter_settings(formatter: ChatFormatter) -> dict[str, Any]:
    return {"max_tokens": formatter.max_tokens, "system_prompt": formatter.system_prompt}


# ---------------------------------------------------------------------------
# Activation shards


@dataclass(frozen=True)
class Shard:
    """Prompts whose activations one unit extracts.

    Args:
        index: the shard's position in the plan.
        rows: the prompts' rows in the caller's prompt list.
        texts: the prompts, in ``rows`` order.
    """

    index: int
    rows: tuple[int, ...]
    texts: tuple[str, ...]


class ShardActs(NamedTuple):
    """One shard's activations and the ``cache_key`` of the model that computed them (the
    driver caches only what its own model, weights and dtype, would have computed)."""

    shard: Shard
    acts: torch.Tensor
    cache_key: str


class ActivationShards:
    """Extracts one shard's activations ``[n, n_layers, n_positions, d]`` (float32).

    Args:
        lm, formatter, layers, positions, batch_size: as for
            :func:`~.activations.extract_activations`.
        cache: used when the task runs here (the local executor); a remote run fills the
            cache in the driver (:func:`scan_activations`).

    Example::

        task = ActivationShards(lm, fmt, [4, 8], [-1], batch_size=16)
        shard, acts, _ = task(Shard(0, (0, 1), ("Hi", "Hello")))
    """

    def __init__(self, lm, formatter: ChatFormatter, layers: Sequence[int],
                 positions: Sequence[int], *, batch_size: int,
                 cache: ActivationCache | None = None, description: str = "activations"):
        self.lm, self.formatter = lm, formatter
        self.layers, self.positions = [int(x) for x in layers], [int(x) for x in positions]
        self.batch_size, self.cache, self.description = int(batch_size), cache, description

    def __call__(self, shard: Shard) -> ShardActs:
        return ShardActs(shard, extract_activations(
            self.lm, self.formatter, list(shard.texts), self.layers, self.positions,
            batch_size=self.batch_size, cache=self.cache, description=self.description),
            self.lm.cache_key)

    def worker_spec(self) -> dict[str, Any]:
        """Plain data a worker rebuilds this task from (:func:`activations_worker`)."""
        return {"task": "activations", "model": _load_args(self.lm),
                "formatter": _formatter_settings(self.formatter), "layers": self.layers,
                "positions": self.positions, "batch_size": self.batch_size}


def encode_shard(shard: Shard) -> dict[str, Any]:
    return {"index": shard.index, "texts": list(shard.texts)}


def decode_activations(shard: Shard, data: Mapping[str, Any]) -> ShardActs:
    # Ray hands back read-only arrays; torch wants writable memory (a copy only then)
    acts = torch.from_numpy(np.require(data["acts"], np.float32, ["W"]))
    if data["index"] != shard.index or acts.shape[0] != len(shard.rows):
        raise RuntimeError(f"activations for shard {data['index']} do not match shard "
                           f"{shard.index}")
    return ShardActs(shard, acts, str(data["cache_key"]))


def activations_worker(lm, spec: Mapping[str, Any]) -> Callable[[dict], dict]:
    """A worker's side of :class:`ActivationShards`: shard data -> activations (numpy)."""
    formatter = ChatFormatter(lm.tokenizer, **spec["formatter"])

    def run(data: dict) -> dict:
        acts = extract_activations(lm, formatter, data["texts"], spec["layers"], spec["positions"],
                                   batch_size=spec["batch_size"], description="layer scan shard")
        return {"index": data["index"], "acts": acts.numpy(), "cache_key": lm.cache_key}
    return run


def scan_activations(executor, lm, formatter: ChatFormatter, prompts: Sequence[str],
                     layers: Sequence[int], positions: Sequence[int], *, batch_size: int,
                     cache: ActivationCache | None = None,
                     description: str = "activations") -> torch.Tensor:
    """:func:`~.activations.extract_activations` through ``executor``.

    A local executor runs one unit: that very call (with ``cache``). A remote one gets the
    prompts ``cache`` lacks, one shard per forward-pass batch (the batches the local call
    would make), and the driver writes what comes back to ``cache`` (when the workers' model
    is the driver's: same weights, same dtype).

    Example::

        acts = scan_activations(LocalExecutor(), lm, fmt, texts, [4, 8], [-1], batch_size=16)
    """
    task = ActivationShards(lm, formatter, layers, positions, batch_size=batch_size,
                            cache=cache, description=description)
    if not getattr(executor, "remote", False):
        ((_, acts, _),) = list(executor.run([Shard(0, tuple(range(len(prompts))), tuple(prompts))],
                                         task))
        return acts
    layers, positions = task.layers, task.positions
    encoded = [formatter.encode(p) for p in prompts]
    if encoded:  # a bad position fails here, not in every worker
        resolve_position(min(positions), [len(e) for e in encoded], max(len(e) for e in encoded))
    keys = [formatter.prompt_key(p) for p in prompts]
    out = torch.empty(len(prompts), len(layers), len(positions), lm.d_model, dtype=torch.float32)
    todo = _fill_from_cache(cache, keys, layers, positions, out) if cache is not None \
        else list(range(len(prompts)))
    groups = length_sorted_batches([len(encoded[i]) for i in todo], batch_size)
    shards = [Shard(k, tuple(todo[g] for g in group), tuple(prompts[todo[g]] for g in group))
              for k, group in enumerate(groups)]
    done: list[Shard] = []
    try:
        with progress_bar(description, total=len(todo), unit="prompt") as bar:
            for shard, acts, cache_key in executor.run(shards, task):
                out[list(shard.rows)] = acts
                if cache_key == lm.cache_key:
                    done.append(shard)
                bar.advance(len(shard.rows))
    finally:  # what finished is cached even when interrupted, as extract_activations does
        if cache is not None and done:
            rows = [r for s in sorted(done, key=lambda s: s.index) for r in s.rows]
            for li, layer in enumerate(layers):
                for pi, position in enumerate(positions):
                    cache.put(layer, position, [keys[r] for r in rows],
                              out[rows, li, pi].to(lm.dtype))
    return out


def _fill_from_cache(cache: ActivationCache, keys: list[str], layers: list[int],
                     positions: list[int], out: torch.Tensor) -> list[int]:
    """Copy every row cached at each (layer, position); return the other rows, in order."""
    found = {(layer, pos): cache.get(layer, pos, keys) for layer in layers for pos in positions}
    missing = []
    for i, key in enumerate(keys):
        if all(key in hit for hit in found.values()):
            for li, layer in enumerate(layers):
                for pi, pos in enumerate(positions):
                    out[i, li, pi] = found[(layer, pos)][key].float()
        else:
            missing.append(i)
    return missing


# ---------------------------------------------------------------------------
# Induce layers


@dataclass(frozen=True)
class InduceUnit:
    """One candidate layer of the causal check: its unit direction and alpha."""

    layer: int
    direction: torch.Tensor
    alpha: float


class InduceLayers:
    """Scores one candidate layer (:func:`~.layer_scan.induce_scores`); the baseline pass
    (no hook) runs once per task and is shared by every layer it scores.

    Args:
        lm: the loaded model.
        formatter: its chat formatter.
        texts: the benign, complied prompts scored.
        token_ids: the refusal-start tokens.

    Example::

        task = InduceLayers(lm, fmt, bc_texts[:16], tokens)
        unit, score = task(InduceUnit(6, direction, alpha=12.0))
    """

    def __init__(self, lm, formatter: ChatFormatter, texts: Sequence[str],
                 token_ids: Sequence[int], layers: Sequence[int] | None = None):
        self.lm, self.formatter = lm, formatter
        self.texts, self.token_ids = list(texts), [int(t) for t in token_ids]
        # the layers units will score: their passes start from the baseline's resid_pre
        self.layers = sorted(int(x) for x in (layers if layers is not None
                                              else range(1, lm.n_layers)))
        self.batch = pad_left([formatter.encode(t) for t in self.texts],
                              formatter.pad_id).to(lm.device)
        self._base: BasePass | None = None

    def score(self, layer: int, direction: torch.Tensor, alpha: float) -> float:
        if self._base is None:
            self._base = base_pass(self.lm.model, self.batch, self.token_ids, self.layers)
        return induce_scores(self.lm.model, self.batch, {layer: (direction, alpha)},
                             self.token_ids, base=self._base)[layer]

    def __call__(self, unit: InduceUnit) -> tuple[InduceUnit, float]:
        return unit, self.score(unit.layer, unit.direction, unit.alpha)

    def worker_spec(self) -> dict[str, Any]:
        """Plain data a worker rebuilds this task from (:func:`induce_worker`)."""
        return {"task": "induce", "model": _load_args(self.lm),
                "formatter": _formatter_settings(self.formatter), "texts": self.texts,
                "token_ids": self.token_ids, "layers": self.layers}


def encode_induce(unit: InduceUnit) -> dict[str, Any]:
    # float32 -> Python float -> float32 is exact: the worker adds the very same vector
    return {"layer": unit.layer, "direction": unit.direction.float().tolist(),
            "alpha": float(unit.alpha)}


def decode_induce(unit: InduceUnit, data: Mapping[str, Any]) -> tuple[InduceUnit, float]:
    if int(data["layer"]) != unit.layer:
        raise RuntimeError(f"induce score for layer {data['layer']} does not match layer "
                           f"{unit.layer}")
    return unit, float(data["score"])


def induce_worker(lm, spec: Mapping[str, Any]) -> Callable[[dict], dict]:
    """A worker's side of :class:`InduceLayers`: layer data -> its score."""
    task = InduceLayers(lm, ChatFormatter(lm.tokenizer, **spec["formatter"]), spec["texts"],
                        spec["token_ids"], spec.get("layers"))

    def run(data: dict) -> dict:
        direction = torch.tensor(data["direction"], dtype=torch.float32)
        return {"layer": int(data["layer"]),
                "score": task.score(int(data["layer"]), direction, float(data["alpha"]))}
    return run


def scan_induce_scores(executor, lm, formatter: ChatFormatter, texts: Sequence[str],
                       candidates: Mapping[int, tuple[torch.Tensor, float]],
                       token_ids: Sequence[int], *, on_layer=None) -> dict[int, float]:
    """:func:`~.layer_scan.induce_scores` through ``executor``, one unit per candidate layer
    (in layer order, whatever order they finish in).

    Example::

        scores = scan_induce_scores(LocalExecutor(), lm, fmt, bc_texts[:16],
                                    causal_candidates(scan, hr, bc, n_model_layers=24,
                                                      max_depth=0.8), tokens)
    """
    task = InduceLayers(lm, formatter, texts, token_ids, list(candidates))
    units = [InduceUnit(int(layer), direction, float(alpha))
             for layer, (direction, alpha) in candidates.items()]
    scores = {}
    for unit, score in executor.run(units, task):
        scores[unit.layer] = score
        if on_layer is not None:
            on_layer()
    return {u.layer: scores[u.layer] for u in units}
