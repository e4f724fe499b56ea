"""The sweep stages (steering, ablation) through the pipeline and the CLI, and rejudge."""

import json
import shutil

import pytest
from conftest import TINY_SETTINGS, one_torch_thread, write_tiny_suite

from refusal_atlas.cli import main
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import RunContext, plan, run_pipeline
from refusal_atlas.sweeps import GAP_UNCERTAINTY


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def _directions_template(tiny_model_dirs, tmp_path_factory):
    """One tiny run folder up to the directions stage, built once for this module."""
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
    run_dir = tmp_path / "run"
    shutil.copytree(_directions_template[1], run_dir)
    return run_dir


@pytest.fixture
def run_config(_directions_template):
    return _directions_template[0].model_copy(deep=True)


@pytest.fixture(autouse=True)
def _quick_uncertainty(monkeypatch):
    # The dict itself is patched: every module that imported it sees the cheaper settings.
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_boot", 50)
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_perm", 50)


def test_steering_and_ablation_stages(run_config, directions_run):
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
    # one baseline for the run: ablation stores steering's baseline rows, generating none
    base = {r["prompt_id"]: r["response"] for r in rows if r["condition"] == "baseline"}
    ablated = _lines(directions_run / "ablation/results.jsonl")
    assert {r["prompt_id"]: r["response"] for r in ablated
            if r["condition"] == "baseline"} == base
    assert {r.get("reused_from") for r in ablated if r["condition"] == "baseline"} == {"steering"}
    assert a["sweep"]["n_reused_rows"] == 8 and a["sweep"]["n_generated_rows_planned"] == 3 * 8

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


def test_a_sweep_without_a_current_steering_stage_generates_its_own_baseline(
        run_config, directions_run):
    cfg = run_config
    cfg.steering.alphas = [0.0, 3.0]
    run_pipeline(cfg, directions_run, ["steering"])
    cfg.steering.max_new_tokens += 1  # steering's folder is now stale for this config
    run_pipeline(cfg, directions_run, ["ablation"])
    a = json.loads((directions_run / "ablation/metrics.json").read_text())
    assert a["sweep"]["n_reused_rows"] == 0 and a["sweep"]["n_generated_rows_planned"] == 4 * 8
    assert not any("reused_from" in r for r in _lines(directions_run / "ablation/results.jsonl"))


def _cli(args, capsys):
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
