"""One progress-bar style for every long loop (rich, with rate and ETA), and the one way
error and warning lines are printed."""

from __future__ import annotations

import os
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
    """A rich progress bar with count, rate and ETA (off when REFUSAL_ATLAS_NO_PROGRESS=1)."""
    if _disabled():
        yield _Bar(None, None, unit)
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
