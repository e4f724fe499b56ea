"""Error and warning lines: one line each, never wrapped at 80 columns when stderr is a
file or a pipe, and a message is printed literally (``[`` is not markup)."""

import io
import subprocess
import sys

from rich.console import Console

from refusal_atlas import progress

LONG = ("steering.directions: unknown direction(s) [Nope, Other]; runs/demo-model has "
        + ", ".join(f"split_{i}" for i in range(40)) + " [bold]not markup[/bold]")


def test_error_line_is_one_unwrapped_literal_line(capsys):
    assert len(LONG) > 300
    progress.print_error(LONG)
    err = capsys.readouterr().err
    assert err == f"error: {LONG}\n"


def test_warnings_are_one_unwrapped_line_each(capsys):
    progress.warn([LONG, "second [x]"])
    err = capsys.readouterr().err
    assert err.splitlines() == [f"warning: {LONG}", "warning: second [x]"]


def test_a_multi_line_message_still_prints_as_one_line(capsys):
    progress.print_error("first part\nsecond part")
    assert capsys.readouterr().err == "error: first part second part\n"


def test_not_wrapped_on_a_narrow_terminal_either(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console",
                        Console(file=buffer, width=40, force_terminal=True, color_system=None))
    progress.print_error(LONG)
    assert buffer.getvalue() == f"error: {LONG}\n"


def test_stderr_redirected_to_a_file_keeps_the_line_whole(tmp_path):
    # the reported case: `2> log` (rich falls back to 80 columns when stderr is no terminal)
    log = tmp_path / "log"
    code = ("import sys; from refusal_atlas.progress import print_error; "
            "print_error(sys.argv[1])")
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-c", code, LONG], stderr=fh, check=True,
                       env={"PATH": "/usr/bin:/bin", "TERM": "dumb"})
    assert log.read_text() == f"error: {LONG}\n"
