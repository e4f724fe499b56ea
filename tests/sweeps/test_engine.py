"""The sweep engine: alpha = 0 dedupe, resume after a kill, two-pass judging, a second judge."""

import json

import pytest

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.errors import UserError
from refusal_atlas.judges import get_judge
from refusal_atlas.sweeps import BatchGenerator, ablation_grid, run_sweep, steering_grid

from .helpers import tiny_prompts, tiny_vectors


def test_alpha_zero_rows_are_the_baseline(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    conds = steering_grid(["A", "B"], [0, 5])
    judge = get_judge("substring")
    kw = dict(max_new_tokens=6, batch_size=5, judge=judge)
    raw = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "raw",
                    dedupe=False, **kw)
    dedup = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "dedup", **kw)
    resp = {(r["condition"], r["prompt_id"]): r["response"] for r in raw.rows}
    for p in tiny_prompts():
        assert resp[("steer/A/a=0", p.id)] == resp[("baseline", p.id)]
        assert resp[("steer/B/a=0", p.id)] == resp[("baseline", p.id)]
    strip = [{k: v for k, v in r.items() if k != "generated_as"} for r in raw.rows]
    assert strip == [{k: v for k, v in r.items() if k != "generated_as"} for r in dedup.rows]
    assert raw.stats["n_generated_rows_planned"] == 5 * 6
    assert dedup.stats["n_generated_rows_planned"] == 3 * 6
    assert {r["generated_as"] for r in dedup.rows if r["condition"].endswith("a=0")} == {"baseline"}


class Interrupting:
    """Wraps a batch generator; raises KeyboardInterrupt when asked for batch number ``after``."""

    def __init__(self, generate_batch, after):
        self.generate_batch, self.after, self.calls = generate_batch, after, 0

    def __call__(self, batch):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.generate_batch(batch)


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("judge_name", ["substring", "marker"])
def test_killed_sweep_resumes_to_the_same_results(qwen_tiny, tmp_path, judge_name):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    conds = steering_grid(["A", "B"], [0, 4]) + ablation_grid(["A"], baseline=False)
    judge = get_judge(judge_name)
    kw = dict(max_new_tokens=5, batch_size=4, judge=judge)
    clean = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "clean", **kw)

    folder = tmp_path / "killed"
    generate_batch = Interrupting(BatchGenerator(qwen_tiny, fmt, vectors, max_new_tokens=5), 2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, folder,
                  generate_batch=generate_batch, **kw)
    store = folder / ("results.jsonl" if judge_name == "substring" else "responses.jsonl")
    n_partial = len(_lines(store))
    assert 0 < n_partial < len(clean.rows)
    with open(store, "a") as fh:  # a writer killed mid-line leaves a torn last line
        fh.write('{"condition": "steer/A/a=4", "prompt_id": "p')

    resumed = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, folder, **kw)
    assert resumed.rows == clean.rows
    assert resumed.stats["n_units_this_run"] < clean.stats["n_units_this_run"]
    final = _lines(folder / "results.jsonl")
    keys = [(r["condition"], r["prompt_id"]) for r in final]
    assert len(keys) == len(set(keys)) == len(clean.rows)  # nothing lost, nothing twice
    again = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, folder,
                      generate_batch=Interrupting(None, 0), **kw)  # all done: no batch runs
    assert again.rows == clean.rows and again.stats["n_units_this_run"] == 0


def test_kill_between_generation_and_judging_loses_nothing(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    conds = steering_grid(["A"], [0, 4])

    class DiesWhileJudging:
        name, approximate = "marker", False

        def judge(self, prompts, responses):
            raise KeyboardInterrupt

    kw = dict(max_new_tokens=5, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "s",
                  judge=DiesWhileJudging(), **kw)
    assert len(_lines(tmp_path / "s" / "responses.jsonl")) == 3 * 6
    done = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "s",
                     judge=get_judge("marker"), generate_batch=Interrupting(None, 0), **kw)
    assert len(done.rows) == 3 * 6
    assert [r["refused"] for r in done.rows] == ["(r)" in r["prompt"] for r in done.rows]


def test_second_judge_on_the_same_store_reuses_the_responses(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    conds = steering_grid(["A"], [0, 4])
    kw = dict(max_new_tokens=4, batch_size=4)
    first = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path,
                      judge=get_judge("substring"), **kw)
    for _ in range(2):  # the second time nothing is left to do
        second = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path,
                           judge=get_judge("marker"), generate_batch=Interrupting(None, 0), **kw)
    assert [r["response"] for r in second.rows] == [r["response"] for r in first.rows]
    keys = [(r["condition"], r["prompt_id"], r["judge"])
            for r in _lines(tmp_path / "results.jsonl")]
    assert len(keys) == len(set(keys)) == 2 * 3 * 6


def test_larger_units_give_the_same_rows_in_fewer_units(qwen_tiny, tmp_path):
    """Units of several batches decode ``batch_size`` rows at a time, the rest joining as
    rows finish: the same responses as one batch per unit."""
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    conds = steering_grid(["A", "B"], [0, 5]) + ablation_grid(["A"], baseline=False)
    kw = dict(max_new_tokens=6, batch_size=4, judge=get_judge("substring"))
    one = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "one", **kw)
    units = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "units",
                      unit_batches=3, **kw)
    assert [r["response"] for r in units.rows] == [r["response"] for r in one.rows]
    assert units.stats["n_units"] < one.stats["n_units"]
    with pytest.raises(UserError, match="unit_batches"):
        run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "bad",
                  unit_batches=0, **kw)
