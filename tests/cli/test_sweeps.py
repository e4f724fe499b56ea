"""``steer`` / ``ablate`` / ``rejudge`` over a finished directions run: a bad name, a bad
range or a damaged artifact is one line and exit 2, and the run folder stays
byte-identical (the issue's ``steer`` with a truncated ``directions.safetensors`` deleted
``steering/`` and then crashed)."""

import shutil

import pytest
from conftest import TINY_SETTINGS, cli_refuses, folder_state, write_tiny_suite

from refusal_atlas.cli import main


@pytest.fixture(scope="module")
def directions_run(tmp_path_factory, tiny_model_dirs):
    root = tmp_path_factory.mktemp("directions")
    suite = write_tiny_suite(root / "suite")
    out = root / "run"
    sets = [x for s in TINY_SETTINGS for x in ("--set", s)]
    assert main(["directions", "--model", str(tiny_model_dirs["qwen2"]), "--data", str(suite),
                 "--dtype", "float32", "--out", str(out), *sets]) == 0
    # a finished steering folder stands for hours of work that must survive a bad command
    (out / "steering").mkdir()
    (out / "steering" / "results.jsonl").write_text('{"row": 1}\n')
    return out


@pytest.fixture
def run_copy(directions_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(directions_run, out)
    return out




@pytest.mark.parametrize("argv, messages", [
    (["steer", "--judge", "nope"], ["unknown judge 'nope'"]),
    (["steer", "--layers", "-1"], ["steering.layers"]),
    (["steer", "--directions", "Alpha,Nope"], ["unknown direction(s) Nope"]),
    (["steer", "--alphas", "a,b"], ["alphas"]),
    (["steer", "--judge-option", "nope=1", "--judge", "substring"], ["nope"]),
    (["ablate", "--judge", "nope"], ["unknown judge 'nope'"]),
    (["rejudge", "--judge", "nope"], ["unknown judge 'nope'"]),
])
def test_bad_options_leave_the_run_byte_identical(argv, messages, run_copy, capsys):
    before = folder_state(run_copy)
    cli_refuses([*argv, "--out", str(run_copy)], capsys, *messages)
    assert folder_state(run_copy) == before


@pytest.mark.parametrize("name, damage", [
    ("directions.safetensors", lambda b: b[:len(b) // 2]),
    ("directions.json", lambda b: b"\x00garbage"),
    ("directions.json", lambda b: b'{"no_splits": 1}'),
])
def test_damaged_directions_are_one_line_and_steering_survives(name, damage, run_copy, capsys):
    path = run_copy / "directions" / name
    path.write_bytes(damage(path.read_bytes()))
    before = folder_state(run_copy)
    cli_refuses(["steer", "--out", str(run_copy), "--directions", "Alpha", "--alphas", "0,1"],
             capsys, "--force directions")
    assert folder_state(run_copy) == before
