"""Executors by name; the local one runs every batch in order."""

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sweeps import EXECUTORS, BatchResult, LocalExecutor, SweepBatch, get_executor


def test_get_executor_and_local_order():
    assert isinstance(get_executor(" Local "), LocalExecutor)
    assert EXECUTORS["local"] is LocalExecutor
    with pytest.raises(UserError, match="unknown executor"):
        get_executor("ray-nope")
    batches = [SweepBatch(i, ()) for i in range(3)]
    results = list(LocalExecutor().run(batches, lambda b: BatchResult(b, [], [])))
    assert [r.batch.index for r in results] == [0, 1, 2]
