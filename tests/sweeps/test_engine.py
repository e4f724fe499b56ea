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


class Counting:
    """Wraps a batch generator; records the (condition id, prompt id) rows it generates."""

    def __init__(self, generate_batch):
        self.generate_batch, self.rows = generate_batch, []

    def __call__(self, batch):
        self.rows += [(r.condition.id, r.prompt_id) for r in batch.rows]
        return self.generate_batch(batch)


def test_reused_baseline_rows_are_stored_judged_and_not_generated(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    judge = get_judge("substring")
    kw = dict(max_new_tokens=6, batch_size=4, judge=judge)
    steer = run_sweep(qwen_tiny, fmt, tiny_prompts(), steering_grid(["A"], [0, 5]), vectors,
                      tmp_path / "steer", **kw)
    base = [r for r in steer.rows if r["condition"] == "baseline"]
    # a made-up response marks the reused rows: they must not be generated again
    reuse = [dict(r, response="I'm sorry, I cannot.") for r in base]
    counting = Counting(BatchGenerator(qwen_tiny, fmt, vectors, max_new_tokens=6))
    conds = ablation_grid(["A", "B"]) + steering_grid(["B"], [0])
    result = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "ablate",
                       generate_batch=counting, reuse=reuse, reuse_from="steering", **kw)
    assert sorted(counting.rows) == sorted((c, p.id) for c in ("ablate/A", "ablate/B")
                                           for p in tiny_prompts())
    got = {(r["condition"], r["prompt_id"]): r for r in result.rows}
    for p in tiny_prompts():
        for cid in ("baseline", "steer/B/a=0"):  # the alias gets the reused row too
            row = got[(cid, p.id)]
            assert row["response"] == "I'm sorry, I cannot." and row["refused"] is True
            assert row["reused_from"] == "steering" and row["generated_as"] == "baseline"
    assert result.stats["n_reused_rows"] == len(tiny_prompts())
    assert result.stats["n_generated_rows_planned"] == 2 * len(tiny_prompts())
    # resumed: nothing generated again, same rows
    again = run_sweep(qwen_tiny, fmt, tiny_prompts(), conds, vectors, tmp_path / "ablate",
                      generate_batch=counting, reuse=reuse, reuse_from="steering", **kw)
    assert again.rows == result.rows and len(counting.rows) == 2 * len(tiny_prompts())


def test_reused_rows_outside_the_grid_are_ignored(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    vectors = tiny_vectors(qwen_tiny)
    reuse = [{"condition": "baseline", "prompt_id": "elsewhere", "response": "x", "n_tokens": 1},
             {"condition": "steer/A/a=5", "prompt_id": "p0", "response": "x", "n_tokens": 1}]
    counting = Counting(BatchGenerator(qwen_tiny, fmt, vectors, max_new_tokens=4))
    result = run_sweep(qwen_tiny, fmt, tiny_prompts(2), ablation_grid(["A"]), vectors, tmp_path,
                       max_new_tokens=4, batch_size=4, judge=get_judge("substring"),
                       generate_batch=counting, reuse=reuse)
    assert result.stats["n_reused_rows"] == 0
    assert len(counting.rows) == 4 and not any("reused_from" in r for r in result.rows)
