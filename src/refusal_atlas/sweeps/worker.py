"""A sweep's batch generator rebuilt in another process, from plain data.

A remote executor never ships a model: the driver sends
:meth:`~.batches.BatchGenerator.worker_spec` (the model's load arguments, the formatter's
settings, the vectors as lists, the token budget) and each worker loads its own replica
with :func:`generator_from_spec`. Batches travel as ``SweepBatch.to_dict()`` and results
come back as :func:`result_to_dict`, so nothing but plain data crosses a process boundary.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..chat import ChatFormatter
from ..models import load_model
from .backoff import OOMBackoff
from .batches import BatchGenerator, BatchResult, SweepBatch
from .vectors import LayerVector


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
    model_args = dict(spec["model"])
    if device:
        model_args["device"] = device
    lm = load_model(**model_args)
    formatter = ChatFormatter(lm.tokenizer, **spec["formatter"])
    vectors = {name: LayerVector(torch.tensor(v["vector"], dtype=torch.float32), v["layer"],
                                 source=v.get("source", ""))
               for name, v in spec["vectors"].items()}
    return OOMBackoff(BatchGenerator(lm, formatter, vectors,
                                     max_new_tokens=spec["max_new_tokens"]))


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
