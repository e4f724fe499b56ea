"""The run folder is the only copy of hours of work: bad input is one line (exit 2) and
leaves every artifact byte-identical; another study's finished stages are not thrown away."""

import json
import shutil

import pytest
import torch
from conftest import TINY_SETTINGS, cli_refuses, folder_state, one_torch_thread, write_tiny_suite

from refusal_atlas.cli import main
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import run_pipeline
from refusal_atlas.sweeps import GAP_UNCERTAINTY


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


RUN_SETTINGS = ["steering.alphas=[0, 2]", "sae.train.steps=20", "sae.train.expansion=2",
                "sae.train.k=4", "sae.train.max_tokens=2000"]


def _args_of(run_dir, command, *extra):
    """``command`` over ``run_dir`` with the options the run was made with."""
    cfg = json.loads((run_dir / "config.json").read_text())
    args = [command, "--out", str(run_dir), "--model", cfg["model"]["name"], "--dtype",
            "float32", "--data", cfg["data"]["suite"]]
    for s in TINY_SETTINGS + RUN_SETTINGS:
        args += ["--set", s]
    return args + list(extra)


@pytest.fixture(scope="module")
def _finished(tiny_model_dirs, tmp_path_factory):
    """A tiny run with steering finished, built once."""
    root = tmp_path_factory.mktemp("safety")
    suite = write_tiny_suite(root / "suite")
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(suite)}},
                      set_values=TINY_SETTINGS + RUN_SETTINGS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        mp.setitem(GAP_UNCERTAINTY, "n_boot", 20)
        mp.setitem(GAP_UNCERTAINTY, "n_perm", 20)
        run_pipeline(cfg, root / "run", ["steering", "sae"])
    return root


@pytest.fixture
def run(_finished, tmp_path, monkeypatch):
    shutil.copytree(_finished / "run", tmp_path / "run")
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(_finished / "cache"))
    monkeypatch.setenv("REFUSAL_ATLAS_NO_PROGRESS", "1")
    return tmp_path / "run"




def _fails_cleanly(args, capsys, run_dir, match):
    before = folder_state(run_dir)
    cli_refuses(args, capsys, match)
    assert folder_state(run_dir) == before


def test_a_missing_prompt_file_deletes_nothing(run, capsys):
    _fails_cleanly(["steer", "--out", str(run), "--prompts", str(run / "missing.jsonl")],
                   capsys, run, "prompt file not found")


def test_unknown_directions_delete_nothing(run, capsys):
    _fails_cleanly(["steer", "--out", str(run), "--directions", "Nope"], capsys, run,
                   "unknown direction")


def test_a_truncated_artifact_is_not_trusted(run, capsys):
    path = run / "directions" / "directions.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    _fails_cleanly(["steer", "--out", str(run), "--directions", "Alpha", "--alphas", "0,1"],
                   capsys, run, "--force directions")


def test_a_garbage_artifact_of_a_finished_run_is_not_up_to_date(run, capsys, tiny_model_dirs):
    (run / "pools" / "pools.json").write_text("garbage")
    _fails_cleanly(_args_of(run, "directions"), capsys, run, "pools/pools.json")


def test_another_model_does_not_replace_finished_labels(run, capsys, tiny_model_dirs):
    suite = json.loads((run / "config.json").read_text())["data"]["suite"]
    args = ["label", "--out", str(run), "--model", str(tiny_model_dirs["llama"]),
            "--dtype", "float32", "--data", suite]
    for s in TINY_SETTINGS:
        args += ["--set", s]
    _fails_cleanly(args, capsys, run, "--overwrite")
    assert main(args + ["--overwrite"]) == 0
    labels = json.loads((run / "config.json").read_text())["model"]["name"]
    assert labels == str(tiny_model_dirs["llama"])


def test_a_layer_out_of_range_fails_before_anything_is_written(run, capsys, tiny_model_dirs,
                                                               tmp_path):
    suite = json.loads((run / "config.json").read_text())["data"]["suite"]
    fresh = tmp_path / "fresh"
    code = main(["directions", "--out", str(fresh), "--model", str(tiny_model_dirs["qwen2"]),
                 "--dtype", "float32", "--data", suite, "--layer", "999",
                 *sum((["--set", s] for s in TINY_SETTINGS), [])])
    err = capsys.readouterr().err
    assert code == 2 and "activations.layer = 999 is out of range" in err
    assert not fresh.exists()  # refused before the first write: not even the folder


def test_an_unknown_judge_fails_before_anything_is_written(run, capsys):
    _fails_cleanly(["steer", "--out", str(run), "--judge", "nope"], capsys, run,
                   "Unknown judge 'nope'")


def test_a_suite_that_cannot_give_two_directions_fails_before_labelling(tiny_config, tmp_path):
    from refusal_atlas.errors import UserError

    suite = write_tiny_suite(tmp_path / "one")
    for name in ("Beta", "Gamma"):
        (suite / f"{name}.jsonl").unlink()
    cfg = tiny_config.model_copy(deep=True)
    cfg.data.suite = str(suite)
    with pytest.raises(UserError, match="needs at least 2"):
        run_pipeline(cfg, tmp_path / "run1", ["directions"])
    assert not (tmp_path / "run1").exists()

    cfg = tiny_config.model_copy(deep=True)
    cfg.pools.min_pool = 50
    with pytest.raises(UserError, match="pools.min_pool"):
        run_pipeline(cfg, tmp_path / "run2", ["directions"])
    assert not (tmp_path / "run2").exists()


def test_device_and_chat_template_are_checked_before_anything_is_written(tiny_config, tmp_path):
    from refusal_atlas.errors import UserError

    cfg = tiny_config.model_copy(deep=True)
    cfg.model.chat_template = str(tmp_path / "missing.jinja")
    with pytest.raises(UserError, match="does not exist"):
        run_pipeline(cfg, tmp_path / "run", ["labels"])
    cfg = tiny_config.model_copy(deep=True)
    cfg.model.device = "cuda:7" if torch.cuda.is_available() else "cuda"
    with pytest.raises(UserError, match="not available|out of range|no such"):
        run_pipeline(cfg, tmp_path / "run", ["labels"])
    assert not (tmp_path / "run").exists()


def test_a_missing_sae_source_keeps_the_trained_sae(run, capsys):
    _fails_cleanly(["sae", "analyze", "--out", str(run), "--source", "/nonexistent/sae"],
                   capsys, run, "no SAE file or folder")


@pytest.mark.parametrize("extra, match", [
    (["--chat-template", "missing.jinja"], "does not exist"),
    (["--device", "cuda:7"], "cuda"),
    (["--judge", "nope"], "Unknown judge"),
    (["--layer", "-5"], "activations.layer"),
    (["--set", "steering.judge_options={colour: red}"], "Bad options for judge"),
])
def test_bad_options_on_a_finished_run_change_nothing(run, capsys, extra, match):
    _fails_cleanly(_args_of(run, "run", *extra), capsys, run, match)


def test_an_unchanged_rerun_of_a_finished_run_writes_nothing(run, capsys):
    before = folder_state(run)
    assert main(_args_of(run, "pools")) == 0
    assert main(["steer", "--out", str(run)]) == 0
    assert "steering: up to date" in capsys.readouterr().err
    assert folder_state(run) == before


def test_how_a_run_runs_is_not_another_study(run, capsys, tiny_model_dirs):
    """Another device or batch size with a changed analysis setting re-runs that stage; it
    is not refused as 'another model'."""
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["device"] = "auto"
    cfg["labels"]["batch_size"] = 3
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(_args_of(run, "pools", "--set", "pools.seed=7")) == 0
    assert "pools" in capsys.readouterr().err
