"""The command line: a real run on a tiny model, and one clear line for user errors."""

import json

import pytest
from conftest import TINY_SETTINGS

from refusal_atlas.cli import main


def _sets():
    return [x for s in TINY_SETTINGS for x in ("--set", s)]


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_directions_command_end_to_end(tiny_model_dirs, tiny_suite_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, text = _run(["directions", "--model", str(tiny_model_dirs["llama"]), "--data",
                       str(tiny_suite_dir), "--out", str(out), "--dtype", "float32", *_sets()],
                      capsys)
    assert code == 0, text
    manifest = json.loads((out / "directions" / "directions.json").read_text())
    assert manifest["splits"] == ["Alpha", "Beta", "Gamma"]
    assert (out / "geometry" / "geometry.json").exists()
    assert f"results in {out}" in text.replace("\n", "")


def test_dry_run_prints_the_plan_without_running(tiny_model_dirs, tiny_suite_dir, tmp_path,
                                                 capsys):
    out = tmp_path / "run"
    code, text = _run(["directions", "--model", str(tiny_model_dirs["llama"]), "--data",
                       str(tiny_suite_dir), "--out", str(out), "--dry-run", *_sets()], capsys)
    assert code == 0
    for stage in ("labels", "pools", "layer_scan", "directions", "geometry"):
        assert stage in text
    assert not (out / "labels").exists()


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/prompts.jsonl"], "unknown suite"),
    (["--splits", "Alpha,Nope"], "unknown split"),
    (["--layer", "99"], "out of range"),
    (["--set", "pools.n_hr=-3"], "pools.n_hr"),
    (["--set", "pools.no_such_key=1"], "pools.no_such_key: unknown key"),
    (["--position", "0"], "activations.position"),
])
def test_user_errors_are_one_clear_line(args, message, tiny_model_dirs, tiny_suite_dir, tmp_path,
                                        capsys):
    base = ["directions", "--model", str(tiny_model_dirs["qwen2"]), "--data", str(tiny_suite_dir),
            "--out", str(tmp_path / "run"), "--dtype", "float32", *_sets()]
    code, text = _run(base + args, capsys)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text
    error_lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1


def test_bad_data_file_is_one_line(tmp_path, tiny_model_dirs, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "category": "x", "harmful": true}\n{not json\n')
    code, text = _run(["label", "--model", str(tiny_model_dirs["qwen2"]), "--data", str(bad),
                       "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "Traceback" not in text and "bad.jsonl" in text


def test_missing_chat_template_is_one_line(tmp_path, tiny_model_dirs, tiny_suite_dir, capsys):
    import shutil

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_model_dirs["qwen2"], folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    code, text = _run(["label", "--model", str(folder), "--data", str(tiny_suite_dir), "--out",
                       str(tmp_path / "run")], capsys)
    assert code == 2 and "no chat template" in text and "Traceback" not in text


def test_unknown_config_file_and_preset(tmp_path, capsys):
    code, text = _run(["label", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "config file not found" in text
    code, text = _run(["label", "--preset", "nope"], capsys)
    assert code == 2 and "unknown preset" in text


def test_help_lists_the_commands(capsys):
    code, text = _run(["--help"], capsys)
    assert code == 0
    for command in ("label", "pools", "layer-scan", "directions", "geometry", "models"):
        assert command in text


@pytest.mark.parametrize("model, suite, expected", [
    ("qwen2.5-coder-0.5b-instruct", "demo", "runs/demo-qwen2.5-coder-0.5b-instruct"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "/data/my_prompts.csv",
     "runs/my_prompts-SmolLM2-135M-Instruct"),
    ("/models/qwen.Q4_K_M.gguf", "../shared/data/paper/", "runs/paper-qwen.Q4_K_M"),
])
def test_default_run_folder_keeps_dotted_model_names(model, suite, expected):
    from refusal_atlas.cli.options import default_out as _default_out
    from refusal_atlas.config import load_config

    cfg = load_config(overrides={"model": {"name": model}, "data": {"suite": suite}})
    assert str(_default_out(cfg)) == expected
