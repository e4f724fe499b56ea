"""``check_run_dir``: an ``--out`` that cannot hold a run is one line before anything runs,
in every command that takes ``--out``; the check itself leaves nothing behind."""

from pathlib import Path

import pytest

from refusal_atlas.cli import main
from refusal_atlas.cli.options import check_run_dir
from refusal_atlas.errors import UserError


def test_a_new_folder_is_accepted_and_nothing_is_left(tmp_path):
    target = tmp_path / "a" / "b" / "run"
    assert check_run_dir(target) == target.resolve()
    assert list(tmp_path.iterdir()) == []  # the folders made for the check are gone


def test_an_existing_folder_is_kept_as_it_was(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    check_run_dir(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["keep.txt"]


def test_relative_path_resolves_against_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_run_dir(Path("runs/x")) == tmp_path / "runs" / "x"


@pytest.mark.parametrize("make, message", [
    (lambda t: (t / "file.txt").write_text("x") and t / "file.txt", "is a file"),
    (lambda t: (t / "file.txt").write_text("x") and t / "file.txt" / "run", "which is a file"),
    (lambda t: (t / "file.txt").write_text("x") and t / "file.txt" / "a" / "b", "which is a file"),
    (lambda t: Path("/proc/refusal-atlas-run"), "cannot write the run folder"),
    (lambda t: Path("/proc/self/refusal-atlas/run"), "cannot write the run folder"),
])
def test_unusable_out_is_one_line(tmp_path, make, message):
    with pytest.raises(UserError, match=message) as info:
        check_run_dir(make(tmp_path))
    assert "\n" not in str(info.value)


def _bad_outs(tmp_path):
    (tmp_path / "file.txt").write_text("precious")
    return [tmp_path / "file.txt", tmp_path / "file.txt" / "run", Path("/proc/refusal-atlas")]


_OUT_COMMANDS = [["run"], ["label"], ["pools"], ["layer-scan"], ["directions"], ["geometry"],
                 ["steer"], ["ablate"], ["sae", "train"], ["sae", "analyze"], ["sae", "steer"]]


@pytest.mark.parametrize("command", [
    *_OUT_COMMANDS, *[[*c, "--dry-run"] for c in _OUT_COMMANDS],
    ["rejudge", "--judge", "substring"],
], ids=" ".join)
def test_every_command_refuses_an_unusable_out(command, tmp_path, capsys):
    for out in _bad_outs(tmp_path):
        code = main([*command, "--out", str(out)])
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert code == 2, text
        assert "Traceback" not in text
        assert len(text.splitlines()) == 1 and text.startswith("error:"), text
    assert (tmp_path / "file.txt").read_text() == "precious"
    assert {p.name for p in tmp_path.iterdir()} <= {"file.txt", "cache"}  # cache: conftest's
