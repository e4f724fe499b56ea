"""Stage commands over an existing run folder: names and ranges that need no model are
refused with one line and exit 2 before anything is written (the folder stays
byte-identical), whatever the option."""

import shutil

import pytest
from conftest import TINY_SETTINGS, cli_refuses, folder_state, write_tiny_suite

from refusal_atlas.cli import main


def _sets():
    """The tiny settings, with the judge given as ``--judge`` so that a test's ``--judge``
    (later on the line) replaces it; a ``--set`` would win over any option."""
    return ["--judge", "marker", *[x for s in TINY_SETTINGS if ".judge=" not in s
                                   for x in ("--set", s)]]




@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, tiny_model_dirs):
    """A run folder with finished prompts and labels (tiny Qwen2, tiny suite)."""
    root = tmp_path_factory.mktemp("labelled")
    suite = write_tiny_suite(root / "suite")
    out = root / "run"
    base = ["--model", str(tiny_model_dirs["qwen2"]), "--data", str(suite), "--dtype", "float32",
            *_sets()]
    assert main(["label", *base, "--out", str(out)]) == 0
    return out, base




@pytest.mark.parametrize("command, args, messages", [
    ("label", ["--judge", "nope"], ["unknown judge 'nope'"]),
    ("directions", ["--judge", "nope"], ["unknown judge 'nope'"]),
    ("run", ["--judge", "nope"], ["unknown judge 'nope'"]),
    ("label", ["--set", "labels.judge=substring", "--set", "labels.judge_options={nope: 1}"],
     ["nope"]),
    ("directions", ["--layer", "-5"], ["activations.layer"]),
    ("directions", ["--set", "steering.layers=[-1]"], ["steering.layers"]),
    ("directions", ["--position", "0"], ["activations.position"]),
    # other data than the folder's run: the folder's own guard may speak first
    ("label", ["--splits", "Alpha,Nope"], ["unknown split", "other settings"]),
    ("label", ["--data", "/no/such/prompts.jsonl"], ["prompts.jsonl", "other settings"]),
])
def test_bad_names_and_ranges_leave_the_run_folder_byte_identical(command, args, messages,
                                                                  labelled_run, tmp_path,
                                                                  capsys):
    original, base = labelled_run
    out = tmp_path / "run"
    shutil.copytree(original, out)
    before = folder_state(out)
    cli_refuses([command, *base, *args, "--out", str(out)], capsys, *messages)
    assert folder_state(out) == before


@pytest.mark.parametrize("args, messages", [
    (["--judge", "nope"], ["unknown judge 'nope'"]),
    (["--layer", "-5"], ["activations.layer"]),
    (["--splits", "Alpha,Nope"], ["unknown split"]),
    (["--data", "/no/such/prompts.jsonl"], ["/no/such/prompts.jsonl"]),
])
def test_bad_names_and_ranges_write_no_file(args, messages, tiny_model_dirs, tiny_suite_dir,
                                            tmp_path, capsys):
    out = tmp_path / "new" / "run"
    cli_refuses(["label", "--model", str(tiny_model_dirs["qwen2"]), "--data", str(tiny_suite_dir),
              *_sets(), *args, "--out", str(out)], capsys, *messages)
    # an empty run folder may be left (the run lock makes it); not a file in it
    assert not (tmp_path / "new").exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_error_line_prints_brackets_literally_and_unwrapped(tmp_path, capsys):
    missing = tmp_path / ("deep" * 20) / "cfg[bold]x[/bold].yaml"
    cli_refuses(["label", "--config", str(missing)], capsys, f"config file not found: {missing}")
