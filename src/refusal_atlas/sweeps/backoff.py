"""Out-of-memory back-off: a batch too large for the device is halved and retried.

A sweep's ``batch_size`` that fits a 0.5B model on a CPU may not fit a 9B model on a GPU,
and a long prompt can tip a batch over the edge hours into a run. :class:`OOMBackoff`
wraps any ``GenerateBatch``: when generating a batch runs out of memory it frees the
cache, generates the two halves (recursively, down to one row) and returns one result for
the whole batch, so the engine and the store see nothing different. Later batches are cut
to the size that last fitted before they are tried. Every halving is counted in
``BatchResult.oom_splits`` (the engine sums them into the sweep's stats).
"""

from __future__ import annotations

from .batches import BatchResult, GenerateBatch, SweepBatch


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA, MPS or CPU allocator).

    Example:
        >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
        True
        >>> is_out_of_memory(ValueError("bad"))
        False
    """
    import torch  # the sweeps package imports torch anyway; kept local to the check

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower())


def _free_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _merge(batch: SweepBatch, parts: list[BatchResult], splits: int) -> BatchResult:
    acts = None
    if all(p.acts is not None for p in parts):
        import torch

        acts = {layer: torch.cat([p.acts[layer] for p in parts]) for layer in parts[0].acts}
    return BatchResult(batch, [t for p in parts for t in p.responses],
                       [n for p in parts for n in p.n_tokens], sum(p.seconds for p in parts),
                       oom_splits=splits + sum(p.oom_splits for p in parts), acts=acts)


class OOMBackoff:
    """A ``GenerateBatch`` that halves and retries a batch that runs out of memory.

    Args:
        generate_batch: the generator to wrap (e.g. a :class:`~.batches.BatchGenerator`).

    Attributes:
        max_rows: the largest batch size known to fit (None until a batch ran out of
            memory); later batches are cut to it before they are tried.

    Example::

        generate = OOMBackoff(BatchGenerator(lm, formatter, vectors, max_new_tokens=64))
        result = generate(batch)        # same rows, same order, however often it halved
        result.oom_splits               # how many times it had to halve
    """

    def __init__(self, generate_batch: GenerateBatch):
        self.generate_batch = generate_batch
        self.max_rows: int | None = None

    def worker_spec(self):
        """The wrapped generator's worker spec (what a remote executor rebuilds it from)."""
        return self.generate_batch.worker_spec()

    def _sub(self, batch: SweepBatch, start: int, stop: int) -> SweepBatch:
        return SweepBatch(batch.index, batch.rows[start:stop])

    def __call__(self, batch: SweepBatch) -> BatchResult:
        n = len(batch.rows)
        if self.max_rows is not None and n > self.max_rows:
            step = self.max_rows
            return _merge(batch, [self(self._sub(batch, s, s + step))
                                  for s in range(0, n, step)], 0)
        try:
            return self.generate_batch(batch)
        except Exception as exc:  # noqa: BLE001 - anything but out-of-memory is re-raised
            if n <= 1 or not is_out_of_memory(exc):
                raise
        _free_cache()  # outside the except block: the traceback holds the batch's tensors
        half = (n + 1) // 2
        self.max_rows = half if self.max_rows is None else min(self.max_rows, half)
        return _merge(batch, [self(self._sub(batch, 0, half)), self(self._sub(batch, half, n))], 1)
