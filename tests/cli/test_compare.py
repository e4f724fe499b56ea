"""`run --models` (here through `directions`, the same stage command) and `compare`."""

import json

import pytest
from conftest import TINY_SETTINGS, cli_refuses, write_tiny_suite

from refusal_atlas.cli import main


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_model_dirs):
    """Directions and geometry of tiny Qwen2 and tiny Llama, one command, ``--out ROOT``."""
    root = tmp_path_factory.mktemp("two_models")
    suite = write_tiny_suite(root / "suite")
    models = ",".join(str(tiny_model_dirs[f]) for f in ("qwen2", "llama"))
    sets = [x for s in TINY_SETTINGS for x in ("--set", s)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        assert main(["directions", "--models", models, "--data", str(suite), "--dtype",
                     "float32", *sets, "--out", str(root / "runs")]) == 0
    return root / "runs"


def test_models_get_one_run_folder_each(two_models):
    assert sorted(p.name for p in two_models.iterdir()) == ["llama", "qwen2"]
    for name in ("llama", "qwen2"):
        cfg = json.loads((two_models / name / "config.json").read_text())
        assert cfg["models"] is None and cfg["model"]["name"].endswith(name)
        assert (two_models / name / "geometry" / "_done.json").is_file()


def test_compare_writes_the_atlas(two_models, capsys):
    out = two_models / "compare"
    runs = [str(two_models / "qwen2"), str(two_models / "llama")]
    capsys.readouterr()
    assert main(["compare", *runs, "--out", str(out), "--seed", "3"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "qwen2 vs llama: r = " in text and "permutation p = " in text
    for name in ("compare.html", "compare.md", "atlas.json", "figures/cosine.png"):
        assert (out / name).is_file()
    data = json.loads((out / "atlas.json").read_text())
    assert data["seed"] == 3 and data["pairs"][0]["n_splits"] == 3
    # steering was not run: shown as such, not an error
    assert data["models"][0]["steering"]["reason"].startswith("not run")
    # run twice over a glob that now holds the output folder: the output is skipped
    assert main(["compare", *runs, str(out), "--out", str(out)]) == 0


def test_compare_refuses_too_few_or_non_run_folders(two_models, tmp_path, capsys):
    cli_refuses(["compare", str(two_models / "qwen2"), "--out", str(tmp_path / "c")], capsys,
                "at least two run folders")
    cli_refuses(["compare", str(two_models / "qwen2"), str(tmp_path), "--out",
                 str(tmp_path / "c")], capsys, "not a run folder")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args, message", [
    (["--models", " , "], "--models is empty"),
    (["--models", "a,a"], "listed more than once"),
    (["--models", "a,b", "--model", "c"], "not both"),
    (["--models", "qwen2.5-coder-0.5b-instruct,/no/such/model"], "/no/such/model"),
])
def test_bad_model_lists_are_one_line(args, message, tmp_path, capsys):
    cli_refuses(["run", *args, "--out", str(tmp_path / "r")], capsys, message)
    assert not (tmp_path / "r").exists()


def test_dry_run_plans_every_model(tmp_path, capsys, tiny_model_dirs):
    models = ",".join(str(tiny_model_dirs[f]) for f in ("qwen2", "llama"))
    capsys.readouterr()
    assert main(["run", "--models", models, "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("plan for ") == 2
    assert not (tmp_path / "r").exists()
