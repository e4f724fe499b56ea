"""One progress-bar style for every long loop (rich, with rate and ETA; a plain line every
~10 s when stderr is not a terminal), and the one way error and warning lines are printed."""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# soft_wrap: a printed line is never broken at the console width (80 columns when stderr is a
# file or a pipe, e.g. CI or `2> log`); tables and bars still fit the width they are given.
console = Console(stderr=True, soft_wrap=True)


def _disabled() -> bool:
    return os.environ.get("REFUSAL_ATLAS_NO_PROGRESS", "") not in ("", "0")


LINE_EVERY_S = 10.0
"""How often a progress line is printed when stderr is a file or a pipe."""


def _duration(seconds: float) -> str:
    seconds = max(0, int(math.ceil(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _LineBar:
    """Progress for a log (``make demo > log``, CI, nohup): rich draws nothing there until
    the loop ends, so this prints ``description: done/total unit, rate, eta`` as one plain
    line at most every ``every`` seconds, and once at the end."""

    def __init__(self, description: str, total: float | None, unit: str,
                 every: float | None = None, clock=time.monotonic):
        self.description, self.total, self.unit = description, total, unit
        self.every = LINE_EVERY_S if every is None else every
        self.clock = clock
        self.done = 0.0
        self.start = self.last = clock()

    def line(self) -> str:
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        count = (f"{self.done:g}/{self.total:g}" if self.total is not None
                 else f"{self.done:g}")
        parts = [f"{self.description}: {count} {self.unit}", f"{rate:.2f} {self.unit}/s",
                 f"elapsed {_duration(elapsed)}"]
        if self.total is not None and rate > 0 and self.done < self.total:
            parts.append(f"eta {_duration((self.total - self.done) / rate)}")
        return ", ".join(parts)

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self.clock() - self.last >= self.every:
            self.last = self.clock()
            console.print(self.line(), soft_wrap=True, highlight=False, markup=False)

    def set_total(self, total: float) -> None:
        self.total = total

    def finish(self) -> None:
        if self.done:
            console.print(self.line(), soft_wrap=True, highlight=False, markup=False)


class _Bar:
    def __init__(self, progress: Progress | None, task_id: int | None, unit: str):
        self._progress = progress
        self._task_id = task_id
        self.unit = unit

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, n)

    def set_total(self, total: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, total=total)


class _RateColumn(TextColumn):
    """Rows per second (or whatever unit the loop counts)."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[override]
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        return f"{speed:.2f} {unit}/s" if speed else f"-- {unit}/s"


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "it") -> Iterator[_Bar]:
    """A rich progress bar with count, rate and ETA (off when REFUSAL_ATLAS_NO_PROGRESS=1).

    When stderr is not a terminal the bar is a plain line every ~10 s instead
    (:data:`LINE_EVERY_S`), so a log shows how far a long stage is.

    Example:
        >>> with progress_bar("steering", total=3, unit="batch") as bar:  # doctest: +SKIP
        ...     for _ in range(3):
        ...         bar.advance()
    """
    if _disabled():
        yield _Bar(None, None, unit)
        return
    if not console.is_terminal:
        bar = _LineBar(description, total, unit)
        yield bar
        bar.finish()
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task_id = progress.add_task(description, total=total, unit=unit)
        yield _Bar(progress, task_id, unit)


def _print_line(label: str, style: str, message: str) -> None:
    """``label: message`` on stderr as ONE line: never wrapped at the console width (a log
    or CI captures stderr at 80 columns otherwise) and never read as markup (a message may
    hold ``[``, e.g. a list or a path)."""
    line = Text.assemble((f"{label}:", style), " ", " ".join(str(message).splitlines()))
    console.print(line, soft_wrap=True, highlight=False)


def print_error(message: str) -> None:
    """Print ``error: message`` as one unwrapped line on stderr (the CLI's user errors)."""
    _print_line("error", "bold red", message)


def warn(warnings: list[str]) -> None:
    """Print each warning on its own unwrapped line, in the one warning style."""
    for warning in warnings:
        _print_line("warning", "yellow", warning)
