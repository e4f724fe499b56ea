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


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_gets_a_plain_progress_line_every_ten_seconds(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buffer, width=80, color_system=None))
    clock = _Clock()
    bar = progress._LineBar("steering", total=100, unit="rows", clock=clock)
    for step in range(50):
        clock.now += 0.5  # 2 rows/s: a line at 10 s and at 20 s
        bar.advance()
    bar.finish()
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "steering: 20/100 rows, 2.00 rows/s, elapsed 10s, eta 40s"
    assert lines[1] == "steering: 40/100 rows, 2.00 rows/s, elapsed 20s, eta 30s"
    assert lines[-1] == "steering: 50/100 rows, 2.00 rows/s, elapsed 25s, eta 25s"
    assert len(lines) == 3


def test_progress_bar_writes_lines_when_stderr_is_a_file(tmp_path):
    log = tmp_path / "log"
    code = ("from refusal_atlas import progress; progress.LINE_EVERY_S = 0\n"
            "with progress.progress_bar('labels', total=3, unit='batch') as bar:\n"
            "    for _ in range(3): bar.advance()\n")
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-c", code], stderr=fh, check=True,
                       env={"PATH": "/usr/bin:/bin", "TERM": "dumb"})
    lines = log.read_text().splitlines()
    assert lines[0].startswith("labels: 1/3 batch, ") and "eta" in lines[0]
    assert lines[-1].startswith("labels: 3/3 batch, ") and "eta" not in lines[-1]
