"""`refusal-atlas run` killed (SIGKILL) in the middle of the steering stage, then re-run,
ends with the same artifacts as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_SETTINGS

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import conftest  # registers the deterministic `marker` judge
from refusal_atlas.cli import main
sys.exit(main(sys.argv[1:]))
"""

RUN_SETTINGS = TINY_SETTINGS + [
    # one-row work units: an interrupt lands between units of a stage still running
    "steering.batch_size=1", "executor.unit_batches=1", "steering.alphas=[0, 2, 4, 8]",
    "steering.max_new_tokens=6",
    "sae.train.steps=30", "sae.train.expansion=2", "sae.train.k=4", "sae.train.max_tokens=2000",
]


def _command(tmp_path, model_dir, suite_dir, out, extra=()):
    script = tmp_path / "run_cli.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parents[1])))
    args = [sys.executable, str(script), "run", "--model", str(model_dir), "--data", str(suite_dir),
            "--out", str(out), "--dtype", "float32"]
    for s in [*RUN_SETTINGS, *extra]:
        args += ["--set", s]
    return args


def _env(tmp_path):
    env = dict(os.environ, REFUSAL_ATLAS_NO_PROGRESS="1", OMP_NUM_THREADS="1",
               REFUSAL_ATLAS_CACHE=str(tmp_path / "cache"))
    return env


def _rows(path: Path) -> list[tuple]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return sorted((r["condition"], r["prompt_id"], r["response"], r.get("refused")) for r in rows)


def _stable_metrics(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("sweep", None)  # how this process ran (timings, rows generated this time)
    return data


def test_kill_during_steering_then_resume_matches_uninterrupted(tmp_path, tiny_model_dirs,
                                                                tiny_suite_dir):
    model = tiny_model_dirs["qwen2"]
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    done = subprocess.run(_command(tmp_path, model, tiny_suite_dir, clean), env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report:" in done.stdout + done.stderr

    proc = subprocess.Popen(_command(tmp_path, model, tiny_suite_dir, broken), env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The marker judge is not an "instant" judge, so the sweep writes responses.jsonl while
    # generating and results.jsonl in a judging pass: watch both.
    watched = [broken / "steering" / "responses.jsonl", broken / "steering" / "results.jsonl"]

    def rows_written() -> int:
        return sum(len(p.read_text().splitlines()) for p in watched if p.exists())

    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            if rows_written() >= 5:
                break
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed mid-steering")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (broken / "steering" / "_done.json").exists()
    partial = rows_written()

    again = subprocess.run(_command(tmp_path, model, tiny_suite_dir, broken), env=_env(tmp_path),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    log = again.stdout + again.stderr
    for stage in ("labels", "pools", "directions", "geometry"):
        assert f"{stage}: up to date" in log  # finished stages were not redone

    assert _rows(broken / "steering" / "results.jsonl") == _rows(clean / "steering" / "results.jsonl")
    n = len((broken / "steering" / "results.jsonl").read_text().splitlines())
    assert n == len(_rows(clean / "steering" / "results.jsonl"))  # no duplicates, none lost
    generated = [json.loads(x) for x in
                 (broken / "steering" / "responses.jsonl").read_text().splitlines()]
    keys = [(r["condition"], r["prompt_id"]) for r in generated]
    assert len(keys) == len(set(keys)) and len(keys) > partial  # resumed, nothing generated twice
    for rel in ("steering/metrics.json", "ablation/metrics.json"):
        assert _stable_metrics(broken / rel) == _stable_metrics(clean / rel), rel
    for rel in ("directions/directions.safetensors", "labels/labels.jsonl"):
        assert (broken / rel).exists()
    assert (broken / "directions/directions.safetensors").read_bytes() == \
        (clean / "directions/directions.safetensors").read_bytes()
    assert json.loads((broken / "style/summary.json").read_text())["by_direction"] == \
        json.loads((clean / "style/summary.json").read_text())["by_direction"]
    assert (broken / "report.html").exists() and (broken / "report.md").exists()


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path} appeared")
        time.sleep(0.01)


def test_ctrl_c_names_the_stage_exits_130_and_the_stage_time_sums_attempts(
        tmp_path, tiny_model_dirs, tiny_suite_dir):
    model = tiny_model_dirs["qwen2"]
    run = tmp_path / "run"
    # longer responses: the stage is still running when the signal lands
    slower = ("steering.max_new_tokens=24",)
    proc = subprocess.Popen(_command(tmp_path, model, tiny_suite_dir, run, slower),
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(run / "steering" / "responses.jsonl", proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted: during the steering stage" in err and "re-run the same command" in err
    assert not (run / ".lock").exists()  # released on the way out
    first = json.loads((run / "steering" / "_started.json").read_text())
    assert first["earlier_attempts"] == 1 and first["earlier_seconds"] > 0

    again = subprocess.run(_command(tmp_path, model, tiny_suite_dir, run, slower),
                           env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    marker = json.loads((run / "steering" / "_done.json").read_text())
    assert marker["attempts"] == 2 and marker["seconds"] >= first["earlier_seconds"]


def test_two_runs_on_one_folder_the_second_is_refused(tmp_path, tiny_model_dirs, tiny_suite_dir):
    model = tiny_model_dirs["qwen2"]
    run = tmp_path / "run"
    first = subprocess.Popen(_command(tmp_path, model, tiny_suite_dir, run), env=_env(tmp_path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(run / "labels" / "_started.json", first)
        second = subprocess.run(_command(tmp_path, model, tiny_suite_dir, run),
                                env=_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"in use by process {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert first.wait(timeout=600) == 0
    finally:
        if first.poll() is None:
            first.kill()
    rows = [json.loads(x) for x in (run / "labels" / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == len({r["prompt_id"] for r in rows})  # each row once
