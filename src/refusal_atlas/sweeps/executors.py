"""Executors: who runs a sweep's batches, and where.

An executor takes the batches still to generate and a ``generate_batch`` callable and yields
one :class:`~.batches.BatchResult` per batch as each finishes, in any order. The engine
writes every result's rows to the store at once, so nothing assumes one process: an
executor that ships ``batch.to_dict()`` to other processes (each building a
:class:`~.batches.BatchGenerator` from the same model and vectors) only has to yield the
results back. Executors are listed in :data:`EXECUTORS`, the one place a new one is added.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

from ..errors import UserError
from .batches import BatchResult, GenerateBatch, SweepBatch
from .ray_executor import RayExecutor


class Executor(Protocol):
    """Runs independent batches; yields each result as its batch finishes (any order).

    A batch that yields no result is not lost: the engine reports the missing rows and a
    re-run generates them.

    Attributes:
        name: recorded in the sweep's stats (``metrics.json``).
    """

    name: str

    def run(self, batches: Sequence[SweepBatch],
            generate_batch: GenerateBatch) -> Iterator[BatchResult]: ...


class LocalExecutor:
    """In this process, one batch after another."""

    name = "local"

    def run(self, batches: Sequence[SweepBatch],
            generate_batch: GenerateBatch) -> Iterator[BatchResult]:
        for batch in batches:
            yield generate_batch(batch)


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
