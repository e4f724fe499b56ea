"""Out-of-memory back-off: a batch larger than what fits is halved and retried, rows intact."""

import pytest
import torch

from refusal_atlas.sweeps import BASELINE, BatchResult, SweepBatch, SweepRow
from refusal_atlas.sweeps.backoff import OOMBackoff, is_out_of_memory


class FitsAtMost:
    """A fake generator: runs out of memory for batches larger than ``k`` rows."""

    def __init__(self, k, error=torch.OutOfMemoryError):
        self.k, self.error, self.sizes = k, error, []

    def __call__(self, batch):
        self.sizes.append(len(batch.rows))
        if len(batch.rows) > self.k:
            raise self.error("CUDA out of memory. Tried to allocate 20.00 GiB")
        return BatchResult(batch, [f"r:{r.prompt_id}" for r in batch.rows],
                           [len(r.prompt_id) for r in batch.rows], 0.5)


def _batch(n, index=0):
    return SweepBatch(index, tuple(SweepRow(BASELINE, f"p{i}", "x") for i in range(n)))


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
def test_a_batch_that_does_not_fit_is_halved_and_retried(error):
    fake = FitsAtMost(3, error)
    generate = OOMBackoff(fake)
    result = generate(_batch(10))
    assert result.responses == [f"r:p{i}" for i in range(10)]  # every row, in order
    assert result.batch == _batch(10) and result.seconds == pytest.approx(0.5 * 4)
    # 10 -> 5 + 5; the first 5 -> 3 + 2; the second 5 is cut to 3 + 2 before it is tried
    assert result.oom_splits == 2
    assert fake.sizes == [10, 5, 3, 2, 3, 2]
    assert generate.max_rows == 3
    fake.sizes.clear()
    again = generate(_batch(7, index=1))  # cut to the size that fitted before it is tried
    assert fake.sizes == [3, 3, 1] and again.oom_splits == 0
    assert again.responses == [f"r:p{i}" for i in range(7)]


def test_other_errors_and_single_rows_are_not_retried():
    with pytest.raises(torch.OutOfMemoryError):
        OOMBackoff(FitsAtMost(0))(_batch(4))  # even one row does not fit: the error stands

    def broken(batch):
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError, match="a bug"):
        OOMBackoff(broken)(_batch(4))
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("shape"))


def test_the_engine_records_the_halvings(qwen_tiny, tmp_path):
    from refusal_atlas.chat import ChatFormatter
    from refusal_atlas.judges import get_judge
    from refusal_atlas.sweeps import BatchGenerator, run_sweep, steering_grid

    from .helpers import tiny_prompts, tiny_vectors

    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    real = BatchGenerator(qwen_tiny, fmt, vectors, max_new_tokens=3)

    def fits_two(batch):
        if len(batch.rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(batch)

    kw = dict(max_new_tokens=3, batch_size=6, judge=get_judge("substring"))
    conds = steering_grid(["A"], [0, 4])
    clean = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "a", **kw)
    backed = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "b",
                       generate_batch=fits_two, **kw)
    assert clean.stats["oom_splits"] == 0 and backed.stats["oom_splits"] >= 2
    assert [r["prompt_id"] for r in backed.rows] == [r["prompt_id"] for r in clean.rows]
