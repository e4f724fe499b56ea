"""``refusal-atlas export``: each format from a finished tiny run, bad input as one line,
and ``--extra-directions`` sweeping an exported file beside the run's own directions."""

import json
import shutil

import pytest
from conftest import TINY_SETTINGS, cli_refuses, write_tiny_suite

from refusal_atlas.cli import main
from refusal_atlas.config import load_config
from refusal_atlas.directions import load_directions
from refusal_atlas.export import read_control_vector, read_directions_file
from refusal_atlas.pipeline.stages import ablation, steering

SETS = [x for s in TINY_SETTINGS for x in ("--set", s)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dirs):
    root = tmp_path_factory.mktemp("export")
    suite = write_tiny_suite(root / "suite")
    out = root / "run"
    assert main(["directions", "--model", str(tiny_model_dirs["qwen2"]), "--data", str(suite),
                 "--dtype", "float32", "--out", str(out), "--layer", "2", *SETS]) == 0
    return out


def test_llamacpp_and_steering_vectors(run_dir, tmp_path):
    d = load_directions(run_dir / "directions")["Alpha"]
    assert main(["export", str(run_dir), "--direction", "Alpha", "--format", "llamacpp",
                 "--alpha", "2.5", "--layers", "2-4", "--out", str(tmp_path / "a.gguf")]) == 0
    cv = read_control_vector(tmp_path / "a.gguf", d_model=64)
    assert cv.model_hint == "qwen2" and sorted(cv.vectors) == [2, 3, 4]
    assert cv.llamacpp_layers() == [1, 2, 3]
    assert (cv.vectors[3] - 2.5 * d.vector).abs().max() < 1e-6
    assert main(["export", str(run_dir), "--direction", "Alpha,Beta", "--format",
                 "steering-vectors", "--out", str(tmp_path / "sv")]) == 0
    back = read_directions_file(tmp_path / "sv" / "Beta.safetensors")
    assert back["Beta"].layer == 2


def test_safetensors(run_dir, tmp_path):
    assert main(["export", str(run_dir), "--direction", "Alpha,Gamma", "--format", "safetensors",
                 "--out", str(tmp_path / "d.safetensors")]) == 0
    back = read_directions_file(tmp_path / "d.safetensors")
    assert sorted(back) == ["Alpha", "Gamma"] and back["Alpha"].layer == 2


@pytest.mark.parametrize("argv, message", [
    (["--direction", "Nope", "--format", "llamacpp"], "unknown direction(s) Nope"),
    (["--direction", "Alpha", "--format", "llamacpp", "--layers", "1"], "out of range"),
    (["--direction", "Alpha", "--format", "llamacpp", "--layers", "2-9"], "out of range"),
    (["--direction", "Alpha", "--format", "steering-vectors", "--layers", "x"], "--layers"),
    (["--direction", "Alpha", "--format", "abliterated", "--alpha", "2"], "--alpha and --layers"),
])
def test_bad_input_is_one_line(argv, message, run_dir, tmp_path, capsys):
    cli_refuses(["export", str(run_dir), *argv, "--out", str(tmp_path / "x.gguf")], capsys,
                message)


def test_unsupported_architecture(tmp_path, tiny_model_dirs, capsys):
    suite = write_tiny_suite(tmp_path / "suite")
    out = tmp_path / "gemma"
    assert main(["directions", "--model", str(tiny_model_dirs["gemma2"]), "--data", str(suite),
                 "--dtype", "float32", "--out", str(out), "--layer", "2", *SETS]) == 0
    cli_refuses(["export", str(out), "--direction", "Alpha", "--format", "abliterated",
                 "--out", str(tmp_path / "abl")], capsys, "does not support gemma2")


def test_abliterated_with_the_test_set_and_extra_directions(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert main(["steer", "--out", str(run), "--alphas", "0,1", "--directions", "Alpha"]) == 0
    before = json.loads((run / "steering" / "_done.json").read_text())["fingerprint"]
    out = tmp_path / "abl"
    assert main(["export", str(run), "--direction", "Alpha,Beta", "--format", "abliterated",
                 "--out", str(out)]) == 0
    record = json.loads((out / "abliteration.json").read_text())
    assert record["basis_rank"] == 2 and record["directions"] == ["Alpha", "Beta"]
    assert record["hook_agreement"]["identical_responses"] == record["hook_agreement"]["n_prompts"]
    assert record["rates"]["rr"] is not None and record["kl_first_token"]["mean"] >= 0
    assert (out / "config.json").is_file() and any(out.glob("*.safetensors"))
    # a direction made elsewhere, swept beside the run's own
    assert main(["export", str(run), "--direction", "Gamma", "--format", "steering-vectors",
                 "--out", str(tmp_path / "other.safetensors")]) == 0
    clash = tmp_path / "Alpha.safetensors"
    shutil.copy(tmp_path / "other.safetensors", clash)
    cli_refuses(["steer", "--out", str(run), "--extra-directions", str(clash)], capsys,
                "has the name of a direction of the run")
    assert main(["steer", "--out", str(run), "--alphas", "0,1", "--directions", "Alpha,other",
                 "--extra-directions", str(tmp_path / "other.safetensors")]) == 0
    metrics = json.loads((run / "steering" / "metrics.json").read_text())
    assert {r["label"] for r in metrics["dose_response"]} >= {"other"}
    assert json.loads((run / "steering" / "_done.json").read_text())["fingerprint"] != before


def test_fingerprints_without_extra_directions_do_not_change(tiny_config):
    assert "extra_directions" not in steering.settings(tiny_config)
    assert "extra_directions" not in ablation.settings(tiny_config)
    cfg = load_config(overrides={**json.loads(tiny_config.model_dump_json()),
                                 "steering": {**tiny_config.steering.model_dump(),
                                              "extra_directions": ["x.gguf"]}})
    assert steering.settings(cfg)["extra_directions"] == [["x.gguf", None]]
