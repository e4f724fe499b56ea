"""The sweep engine: per-row conditions, alpha = 0 dedupe, resume after a kill, stages, CLI."""

import json

import pytest
import torch

from refusal_atlas import hooks, sweeps
from refusal_atlas.chat import ChatFormatter, pad_left
from refusal_atlas.errors import UserError
from refusal_atlas.generation import greedy_generate, stop_token_ids
from refusal_atlas.judges import get_judge
from refusal_atlas.sweeps import (
    BASELINE,
    Condition,
    SteeringVector,
    SweepPrompt,
    ablation_grid,
    plan_units,
    row_interventions,
    run_sweep,
    steering_grid,
)

TEXTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and the sea.",
         "What is the capital of France?", "Write a poem about the sea (r)",
         "How do I kill a Python process?"]
GROUPS = ["HR", "BC", "HC", "BR", "HR", "BC"]


def _unit(d, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    return scale * v / v.norm()


def _bank(lm):
    d, n = lm.d_model, lm.n_layers
    return {"A": SteeringVector(_unit(d, 1), 2), "B": SteeringVector(_unit(d, 2), 1),
            "V": SteeringVector(_unit(d, 3, scale=3.0), n - 1, source="sae")}


def _prompts(k=len(TEXTS)):
    return [SweepPrompt(f"p{i}", TEXTS[i], GROUPS[i] in ("HR", "HC"), GROUPS[i], "s")
            for i in range(k)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run ~50x faster on one thread than on two when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


MIXED = [BASELINE, Condition("steer", "A", 6.0), Condition("steer", "B", -5.0),
         Condition("steer", "A", 4.0, layer=1), Condition("vector", "V", 3.0),
         Condition("ablate", "A"), Condition("ablate", "B"), Condition("steer", "B", 0.0)]


# --------------------------------------------------------------------------- conditions


def test_condition_ids_are_stable_and_round_trip():
    ids = [c.id for c in MIXED]
    assert ids == ["baseline", "steer/A/a=6", "steer/B/a=-5", "steer/A/L=1/a=4", "vector/V/a=3",
                   "ablate/A", "ablate/B", "steer/B/a=0"]
    for c in MIXED:
        assert Condition.from_id(c.id) == c
        assert Condition.from_dict(c.to_dict()) == c
    assert Condition("steer", "X", 2.5).id == "steer/X/a=2.5"
    assert Condition("steer", "B", 0.0).canonical() == BASELINE
    assert Condition("steer", "B", 1.0).canonical().id == "steer/B/a=1"
    for bad in [dict(kind="steer", name="A"), dict(kind="steer", name="A", alpha=float("nan")),
                dict(kind="ablate", name="A", alpha=1.0), dict(kind="nope", name="A"),
                dict(kind="baseline", name="A")]:
        with pytest.raises(UserError):
            Condition(**bad)
    with pytest.raises(UserError):
        Condition.from_id("steer/A/ten")


def test_grids_and_plan():
    grid = steering_grid(["A", "B"], [0, 10, 30])
    assert [c.id for c in grid] == ["baseline", "steer/A/a=0", "steer/A/a=10", "steer/A/a=30",
                                    "steer/B/a=0", "steer/B/a=10", "steer/B/a=30"]
    assert [c.id for c in steering_grid(["A"], [5], layers=[3, 4])] == [
        "baseline", "steer/A/L=3/a=5", "steer/A/L=4/a=5"]
    assert [c.id for c in ablation_grid(["A", "B"])] == ["baseline", "ablate/A", "ablate/B"]
    prompts = _prompts()
    lengths = {p.id: len(p.text) for p in prompts}
    conds = grid + ablation_grid(["A"], baseline=False)
    units = plan_units(conds, prompts, lengths, 4)
    rows = [r for u in units for r in u.rows]
    # alpha = 0 collapses to the baseline; each generated (condition, prompt) row exactly once
    assert len(rows) == len({(r.condition.id, r.prompt_id) for r in rows}) == 6 * len(prompts)
    assert "steer/A/a=0" not in {r.condition.id for r in rows}
    assert all(len(u.rows) <= 4 for u in units)
    kinds = [r.condition.kind == "ablate" for r in rows]
    assert kinds == sorted(kinds)  # ablation rows last, together
    steer_rows = [r for r in rows if r.condition.kind != "ablate"]
    assert [lengths[r.prompt_id] for r in steer_rows] == sorted(
        (lengths[r.prompt_id] for r in steer_rows), reverse=True)
    assert [u.key for u in units] == [u.key for u in plan_units(conds, prompts, lengths, 4)]
    assert sweeps.WorkUnit.from_dict(units[0].to_dict()) == units[0]
    assert len([r for u in plan_units(conds, prompts, lengths, 4, dedupe=False) for r in u.rows]) \
        == 8 * len(prompts)


def test_alphas_parse_and_auto():
    from refusal_atlas.sweeps import parse_alphas, resolve_alphas

    assert parse_alphas("0, 10,30,10") == [0.0, 10.0, 30.0]
    assert parse_alphas("auto") == "auto"
    for bad in ["0,ten", "", "nan", "1,inf"]:
        with pytest.raises(UserError):
            parse_alphas(bad)

    class D:
        def __init__(self, gap):
            self.projection_gap = gap

    alphas, info = resolve_alphas("auto", {"a": D(10.0), "b": D(14.0)}, reference_gap=120.0)
    assert alphas == [0.0, 1.0, 3.0, 6.0, 10.0] and info["scale"] == pytest.approx(0.1)
    assert resolve_alphas([0, 5], {})[0] == [0.0, 5.0]
    with pytest.raises(UserError):
        resolve_alphas("auto", {"a": D(-1.0)})


# --------------------------------------------------------------------------- per-row equivalence


def _generate(lm, fmt, conditions, texts, bank, n=8):
    batch = pad_left([fmt.encode(t) for t in texts], fmt.pad_id)
    with row_interventions(lm.model, conditions, bank):
        return greedy_generate(lm.model, batch, max_new_tokens=n,
                               stop_ids=stop_token_ids(lm.model, lm.tokenizer))


def test_mixed_batch_equals_each_row_alone(tiny_lm):
    """Steer rows (several directions, alphas and layers), a vector row, ablation rows and
    baseline rows in ONE batch give the same tokens as each row run alone."""
    fmt = ChatFormatter(tiny_lm.tokenizer)
    bank = _bank(tiny_lm)
    texts = TEXTS[:3]
    rows = [(c, t) for c in MIXED for t in texts]
    n_hooks = hooks.active_hook_count(tiny_lm.model)
    mixed = _generate(tiny_lm, fmt, [c for c, _ in rows], [t for _, t in rows], bank)
    assert hooks.active_hook_count(tiny_lm.model) == n_hooks  # every hook removed
    alone = [_generate(tiny_lm, fmt, [c], [t], bank)[0] for c, t in rows]
    assert mixed == alone
    plain = greedy_generate(tiny_lm.model, fmt.batch(texts), max_new_tokens=8,
                            stop_ids=stop_token_ids(tiny_lm.model, tiny_lm.tokenizer))
    by_cond = {c.id: mixed[i * 3:(i + 1) * 3] for i, c in enumerate(MIXED)}
    assert by_cond["baseline"] == plain and by_cond["steer/B/a=0"] == plain
    changed = [cid for cid, out in by_cond.items() if out != plain]
    assert len(changed) >= 5, changed  # the interventions really do something


def test_alpha_zero_rows_are_the_baseline(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    bank = _bank(qwen_tiny)
    conds = steering_grid(["A", "B"], [0, 5])
    judge = get_judge("substring")
    kw = dict(max_new_tokens=6, batch_size=5, judge=judge)
    raw = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path / "raw", dedupe=False, **kw)
    dedup = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path / "dedup", **kw)
    resp = {(r["condition"], r["prompt_id"]): r["response"] for r in raw.rows}
    for p in _prompts():
        assert resp[("steer/A/a=0", p.id)] == resp[("baseline", p.id)]
        assert resp[("steer/B/a=0", p.id)] == resp[("baseline", p.id)]
    strip = [{k: v for k, v in r.items() if k != "generated_as"} for r in raw.rows]
    assert strip == [{k: v for k, v in r.items() if k != "generated_as"} for r in dedup.rows]
    assert raw.stats["n_generated_rows_planned"] == 5 * 6
    assert dedup.stats["n_generated_rows_planned"] == 3 * 6
    assert {r["generated_as"] for r in dedup.rows if r["condition"].endswith("a=0")} == {"baseline"}


def test_check_conditions_errors(qwen_tiny):
    bank = _bank(qwen_tiny)
    with pytest.raises(UserError, match="unknown direction"):
        sweeps.check_conditions([Condition("steer", "Z", 1.0)], bank)
    with pytest.raises(UserError, match="unit"):
        sweeps.check_conditions([Condition("ablate", "V")], bank)
    with pytest.raises(UserError, match="out of range"):
        sweeps.check_conditions([Condition("steer", "A", 1.0, layer=99)], bank, qwen_tiny.model)


# --------------------------------------------------------------------------- resume


class Interrupting:
    """Wraps a worker; raises KeyboardInterrupt when asked for unit number ``after``."""

    def __init__(self, worker, after):
        self.worker, self.after, self.calls = worker, after, 0

    def __call__(self, unit):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.worker(unit)


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("judge_name", ["substring", "marker"])
def test_killed_sweep_resumes_to_the_same_results(qwen_tiny, tmp_path, judge_name):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    bank = _bank(qwen_tiny)
    conds = steering_grid(["A", "B"], [0, 4]) + ablation_grid(["A"], baseline=False)
    judge = get_judge(judge_name)
    kw = dict(max_new_tokens=5, batch_size=4, judge=judge)
    clean = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path / "clean", **kw)

    folder = tmp_path / "killed"
    worker = Interrupting(sweeps.GenerationWorker(qwen_tiny, fmt, bank, max_new_tokens=5), 2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, folder, worker=worker, **kw)
    store = folder / ("results.jsonl" if judge_name == "substring" else "responses.jsonl")
    n_partial = len(_lines(store))
    assert 0 < n_partial < len(clean.rows)
    with open(store, "a") as fh:  # a writer killed mid-line leaves a torn last line
        fh.write('{"condition": "steer/A/a=4", "prompt_id": "p')

    resumed = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, folder, **kw)
    assert resumed.rows == clean.rows
    assert resumed.stats["n_units_this_run"] < clean.stats["n_units_this_run"]
    final = _lines(folder / "results.jsonl")
    keys = [(r["condition"], r["prompt_id"]) for r in final]
    assert len(keys) == len(set(keys)) == len(clean.rows)  # nothing lost, nothing twice
    again = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, folder, worker=Interrupting(None, 0),
                      **kw)  # everything done: no unit runs
    assert again.rows == clean.rows and again.stats["n_units_this_run"] == 0


def test_kill_between_generation_and_judging_loses_nothing(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    bank = _bank(qwen_tiny)
    conds = steering_grid(["A"], [0, 4])

    class DiesWhileJudging:
        name, approximate = "marker", False

        def judge(self, prompts, responses):
            raise KeyboardInterrupt

    kw = dict(max_new_tokens=5, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path / "s", judge=DiesWhileJudging(),
                  **kw)
    assert len(_lines(tmp_path / "s" / "responses.jsonl")) == 3 * 6
    done = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path / "s",
                     judge=get_judge("marker"), worker=Interrupting(None, 0), **kw)
    assert len(done.rows) == 3 * 6
    assert [r["refused"] for r in done.rows] == ["(r)" in r["prompt"] for r in done.rows]


def test_second_judge_on_the_same_store_reuses_the_responses(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    bank = _bank(qwen_tiny)
    conds = steering_grid(["A"], [0, 4])
    kw = dict(max_new_tokens=4, batch_size=4)
    first = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path,
                      judge=get_judge("substring"), **kw)
    for _ in range(2):  # the second time nothing is left to do
        second = run_sweep(qwen_tiny, fmt, _prompts(), conds, bank, tmp_path,
                           judge=get_judge("marker"), worker=Interrupting(None, 0), **kw)
    assert [r["response"] for r in second.rows] == [r["response"] for r in first.rows]
    keys = [(r["condition"], r["prompt_id"], r["judge"])
            for r in _lines(tmp_path / "results.jsonl")]
    assert len(keys) == len(set(keys)) == 2 * 3 * 6


# --------------------------------------------------------------------------- stages and CLI


@pytest.fixture(scope="module")
def _directions_template(tiny_model_dirs, tmp_path_factory):
    """One tiny run folder up to the directions stage, built once for this module."""
    from conftest import TINY_SETTINGS, write_tiny_suite

    from refusal_atlas.config import load_config
    from refusal_atlas.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("sweep_run")
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(write_tiny_suite(root / "suite"))}},
                      set_values=TINY_SETTINGS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        run_pipeline(cfg, root / "run", ["directions"])
    return cfg, root / "run"


@pytest.fixture
def directions_run(_directions_template, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(_directions_template[1], run_dir)
    return run_dir


@pytest.fixture
def run_config(_directions_template):
    return _directions_template[0].model_copy(deep=True)


@pytest.fixture(autouse=True)
def _quick_uncertainty(monkeypatch):
    monkeypatch.setattr(sweeps, "GAP_UNCERTAINTY", {"n_boot": 50, "n_perm": 50, "seed": 0})


def test_steering_and_ablation_stages(run_config, directions_run):
    from refusal_atlas.pipeline import RunContext, plan, run_pipeline

    cfg = run_config
    cfg.steering.alphas = [0.0, 3.0]
    run_pipeline(cfg, directions_run, ["steering", "ablation"])
    for rel in ["steering/results.jsonl", "steering/metrics.json", "steering/dose_response.png",
                "steering/tradeoff.png", "steering/conditions.json", "ablation/results.jsonl",
                "ablation/metrics.json", "ablation/ablation.png"]:
        assert (directions_run / rel).exists(), rel
    m = json.loads((directions_run / "steering/metrics.json").read_text())
    assert m["judge"] == "marker" and m["alphas"] == {"mode": "explicit", "alphas": [0.0, 3.0]}
    assert set(m["conditions"]) == {"baseline", *(f"steer/{s}/a={a}" for a in (0, 3)
                                                  for s in ("Alpha", "Beta", "Gamma"))}
    # the marker judge refuses marked prompts whatever the model says
    assert m["conditions"]["baseline"]["accuracy"] == 1.0
    assert "definition" in m["tradeoff_gap"] and m["tradeoff_gap"]["value"] == 0.0
    assert m["tradeoff_gap"]["uncertainty"]["permutation"]["p_value"] == 1.0
    rows = _lines(directions_run / "steering/results.jsonl")
    assert len(rows) == 7 * 8
    assert {"condition", "kind", "direction", "alpha", "layer", "prompt_id", "group", "harmful",
            "response", "n_tokens", "judge", "refused", "judge_raw", "parse_error"} <= set(rows[0])
    a = json.loads((directions_run / "ablation/metrics.json").read_text())
    assert [r["direction"] for r in a["ablation"]] == ["Alpha", "Beta", "Gamma"]

    def status(c):
        return {p.name: p.status for p in plan(RunContext(c, directions_run),
                                               ["steering", "ablation"])}

    assert set(status(cfg).values()) == {"done"}
    faster = cfg.model_copy(deep=True)
    faster.steering.batch_size = 3
    assert set(status(faster).values()) == {"done"}  # batch size is not in a fingerprint
    more = cfg.model_copy(deep=True)
    more.steering.alphas = [0.0, 3.0, 6.0]
    assert {n for n, s in status(more).items() if s != "done"} == {"steering"}
    off = cfg.model_copy(deep=True)
    off.steering.ablation = False
    assert "ablation" not in status(off)


def _cli(args, capsys):
    from refusal_atlas.cli import main

    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_cli_steer_ablate_rejudge(directions_run, capsys):
    out = str(directions_run)
    code, text = _cli(["steer", "--out", out, "--alphas", "0,4", "--directions", "Alpha,Beta",
                       "--batch-size", "5"], capsys)
    assert code == 0, text
    assert "trade-off gap" in text and "Alpha" in text
    m = json.loads((directions_run / "steering/metrics.json").read_text())
    assert {c.split("/")[1] for c in m["conditions"] if c != "baseline"} == {"Alpha", "Beta"}
    code, text = _cli(["ablate", "--out", out, "--directions", "Gamma"], capsys)
    assert code == 0, text
    assert "Gamma" in text
    code, text = _cli(["rejudge", "--out", out, "--judge", "substring"], capsys)
    assert code == 0, text
    assert "agreement" in text
    agreement = json.loads(
        (directions_run / "steering/rejudge/substring/agreement.json").read_text())
    assert agreement["judge_a"] == "marker" and agreement["overall"]["n_rows"] == 5 * 8


def test_cli_errors_are_one_line(directions_run, tmp_path, capsys):
    cases = [
        (["steer", "--out", str(tmp_path / "empty")], "has no directions"),
        (["steer", "--out", str(directions_run), "--directions", "Alpha,Nope"],
         "unknown direction"),
        (["steer", "--out", str(directions_run), "--alphas", "0,ten"], "not a number"),
        (["steer", "--out", str(directions_run), "--alphas", "0,nan"], "finite"),
        (["steer", "--out", str(directions_run), "--layers", "x"], "--layers"),
        (["ablate", "--out", str(directions_run), "--directions", "Nope"], "unknown direction"),
        (["rejudge", "--out", str(directions_run), "--judge", "substring"], "no finished steering"),
        (["steer", "--out", str(directions_run), "--set", "pools.n_bc=3"], "would redo"),
    ]
    for args, message in cases:
        code, text = _cli(args, capsys)
        assert code == 2, (args, text)
        assert message in " ".join(text.split()), (args, text)
        assert "Traceback" not in text
        assert len([x for x in text.splitlines() if x.startswith("error:")]) == 1, text
