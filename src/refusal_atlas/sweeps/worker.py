"""Work units rebuilt in another process, from plain data.

A remote executor never ships a model: each worker loads its own replica once
(:func:`load_worker_model`, from the driver's ``load_model`` arguments) and, for every task
the driver sends, rebuilds it on that replica from the task's ``worker_spec()`` (plain data:
the formatter's settings, the vectors as lists, the token budget, ...). Units travel as
plain data and results come back as plain data. :data:`WORKER_TASKS` is the one table of
task kinds: a sweep's batches (``sweep``, :func:`generator_from_spec`), the layer scan's
activation shards (``activations``) and induce layers (``induce``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from ..chat import ChatFormatter
from ..layer_scan_units import (
    activations_worker,
    decode_activations,
    decode_induce,
    encode_induce,
    encode_shard,
    induce_worker,
)
from ..models import load_model
from .backoff import OOMBackoff
from .batches import BatchGenerator, BatchResult, SweepBatch
from .vectors import LayerVector


def load_worker_model(model_args: Mapping[str, Any], *, device: str | None = None):
    """The driver's model loaded again here (``model_args``: its ``load_args``), on
    ``device`` when given. A ``device_map`` in the arguments is kept: with one, the weights
    spread over the GPUs this worker sees (a Ray actor sees its ``num_gpus``).

    Example::

        lm = load_worker_model(driver_lm.load_args, device="cuda")
    """
    args = dict(model_args)
    if device:
        args["device"] = device
    return load_model(**args)


def _sweep_generator(lm, spec: Mapping[str, Any]) -> OOMBackoff:
    formatter = ChatFormatter(lm.tokenizer, **spec["formatter"])
    vectors = {name: LayerVector(torch.tensor(v["vector"], dtype=torch.float32), v["layer"],
                                 source=v.get("source", ""),
                                 basis=(torch.tensor(v["basis"], dtype=torch.float32)
                                        if v.get("basis") is not None else None))
               for name, v in spec["vectors"].items()}
    return OOMBackoff(BatchGenerator(lm, formatter, vectors,
                                     max_new_tokens=spec["max_new_tokens"],
                                     max_active=spec.get("max_active"),
                                     stop_phrases=spec.get("stop_phrases")))


def generator_from_spec(spec: Mapping[str, Any], *, device: str | None = None) -> OOMBackoff:
    """Load the model a worker spec names and build its batch generator (with OOM back-off).

    Args:
        spec: :meth:`BatchGenerator.worker_spec` of the driver's generator.
        device: where this worker runs the model; None: the spec's device.

    Example::

        generate = generator_from_spec(BatchGenerator(lm, fmt, vectors,
                                                      max_new_tokens=8).worker_spec())
        result = generate(batch)
    """
    return _sweep_generator(load_worker_model(spec["model"], device=device), spec)


def _sweep_worker(lm, spec: Mapping[str, Any]) -> Callable[[dict], dict]:
    generate = _sweep_generator(lm, spec)
    return lambda data: result_to_dict(generate(SweepBatch.from_dict(data)))


@dataclass(frozen=True)
class WorkerTask:
    """One kind of work unit across a process boundary.

    Args:
        build: in the worker: ``(its model, the task's worker spec)`` -> a function from a
            unit's plain data to its result's plain data.
        encode: in the driver: unit -> plain data.
        decode: in the driver: ``(unit, result data)`` -> what the task returns locally.
    """

    build: Callable[[Any, Mapping[str, Any]], Callable[[Any], Any]]
    encode: Callable[[Any], Any]
    decode: Callable[[Any, Any], Any]


def task_kind(spec: Mapping[str, Any]) -> WorkerTask:
    """The :class:`WorkerTask` a worker spec is for (``spec["task"]``; ``sweep`` without)."""
    name = spec.get("task", "sweep")
    if name not in WORKER_TASKS:
        raise ValueError(f"unknown worker task {name!r}; tasks: {', '.join(WORKER_TASKS)}")
    return WORKER_TASKS[name]


def result_to_dict(result: BatchResult) -> dict[str, Any]:
    """A batch result as plain data (the batch by its index and key only).

    Example::

        data = result_to_dict(generate(batch))
        result_from_dict(batch, data).responses == generate(batch).responses
    """
    return {"index": result.batch.index, "key": result.batch.key,
            "responses": list(result.responses), "n_tokens": [int(n) for n in result.n_tokens],
            "seconds": float(result.seconds), "oom_splits": int(result.oom_splits)}


def result_from_dict(batch: SweepBatch, data: Mapping[str, Any]) -> BatchResult:
    """The :class:`BatchResult` of ``batch`` from :func:`result_to_dict` data.

    Raises:
        RuntimeError: the data belongs to another batch (a scheduling bug, never silent).
    """
    if data["key"] != batch.key or len(data["responses"]) != len(batch.rows):
        raise RuntimeError(f"result for batch {data['index']} does not match batch {batch.index}")
    return BatchResult(batch, list(data["responses"]), list(data["n_tokens"]),
                       float(data["seconds"]), oom_splits=int(data.get("oom_splits", 0)))


WORKER_TASKS: dict[str, WorkerTask] = {
    "sweep": WorkerTask(_sweep_worker, SweepBatch.to_dict, result_from_dict),
    "activations": WorkerTask(activations_worker, encode_shard, decode_activations),
    "induce": WorkerTask(induce_worker, encode_induce, decode_induce),
}
"""Task kind (``worker_spec()["task"]``) -> how its units cross to a worker; a new kind of
work unit is added here."""
