"""Executors: who runs work units, and where.

An executor takes units still to do and a task (a callable on one unit) and yields the
task's result for each unit as it finishes, in any order. For a sweep the units are its
batches and the task a :class:`~.batches.BatchGenerator` (one
:class:`~.batches.BatchResult` per batch, whose rows the engine writes to the store at
once); labelling uses the same batches, and the layer scan its activation shards and
induce layers (:mod:`refusal_atlas.layer_scan_units`). Nothing assumes one process: an
executor that ships units to other processes (each rebuilding the task on its own model
replica from the task's ``worker_spec()``, :mod:`.worker`) only has to yield the results
back. Executors are listed in :data:`EXECUTORS`, the one place a new one is added.

An executor used as a context manager (``with executor:``) keeps its workers across
``run`` calls until it exits: a run's :class:`~refusal_atlas.pipeline.context.RunContext`
holds one for all its stages, so a Ray actor pool loads the model once per run.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol, Sequence

from ..errors import UserError
from .batches import BatchResult, GenerateBatch, SweepBatch
from .ray_executor import RayExecutor


class Executor(Protocol):
    """Runs independent units; yields each result as its unit finishes (any order).

    A batch that yields no result is not lost: the engine reports the missing rows and a
    re-run generates them.

    Attributes:
        name: recorded in the sweep's stats (``metrics.json``).
        remote: the units run in other processes, each on its own model replica (callers
            cut work into more units then; a local executor gets one big unit where that
            saves copies).
    """

    name: str
    remote: bool

    def run(self, batches: Sequence[SweepBatch],
            generate_batch: GenerateBatch) -> Iterator[BatchResult]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc: Any) -> None: ...


class LocalExecutor:
    """In this process, one unit after another, on the caller's model."""

    name = "local"
    remote = False

    def run(self, batches: Sequence[Any], generate_batch: Callable[[Any], Any]) -> Iterator[Any]:
        for batch in batches:
            yield generate_batch(batch)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


EXECUTORS: dict[str, type] = {
    "local": LocalExecutor,
    "ray": RayExecutor,  # imports Ray only when built: pip install 'refusal-atlas[ray]'
}
"""Executor name (``executor.name``) -> class; a new executor is added here."""


def get_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name``, built with ``options`` (its keyword arguments, e.g.
    ``num_gpus`` for ``ray``).

    Example:
        >>> get_executor("local").name
        'local'
    """
    key = str(name).strip().lower()
    if key not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; executors: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[key](**options)
