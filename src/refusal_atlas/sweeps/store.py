"""The results store of a sweep: two append-only JSONL files, resumable after a kill.

``responses.jsonl`` holds generated rows waiting for a slow judge; ``results.jsonl`` holds
judged rows. Both are keyed by (condition id, prompt id); a row is appended (fsynced) as
soon as its batch finishes, so a killed sweep resumes where it stopped and never
duplicates a row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..artifacts import append_jsonl, read_jsonl

RESULTS_FILE = "results.jsonl"
RESPONSES_FILE = "responses.jsonl"


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a writer killed mid-append) so the next append starts clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


class ResultsStore:
    """``responses.jsonl`` (generated, not yet judged) and ``results.jsonl`` (judged rows),
    keyed by (condition id, prompt id); appends are fsynced as each batch finishes.

    Args:
        folder: the folder holding the two files (created by the first append).

    Example::

        judged = ResultsStore(run / "steering").judged("substring")
        row = judged[("steer/CocoNot_Safety/a=10", "p0")]
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.responses_path = self.folder / RESPONSES_FILE
        self.results_path = self.folder / RESULTS_FILE

    @staticmethod
    def key(row: Mapping[str, Any]) -> tuple[str, str]:
        return row["condition"], row["prompt_id"]

    def _read(self, path: Path, judge_name: str | None = None) -> dict[tuple[str, str], dict]:
        out: dict[tuple[str, str], dict] = {}
        for row in read_jsonl(path):
            if judge_name is None or row.get("judge") == judge_name:
                out.setdefault(self.key(row), row)
        return out

    def generated(self) -> dict[tuple[str, str], dict]:
        """Every row with a response (judged or not)."""
        rows = self._read(self.responses_path)
        for key, row in self._read(self.results_path).items():
            rows.setdefault(key, row)
        return rows

    def judged(self, judge_name: str | None = None) -> dict[tuple[str, str], dict]:
        """Judged rows (by ``judge_name``, or by any judge: the first row of each key)."""
        return self._read(self.results_path, judge_name)

    def append(self, path: Path, rows: list[dict]) -> None:
        """Append ``rows`` to ``path`` (one of the two files), cutting a torn tail first."""
        if rows:
            _repair_tail(path)
            append_jsonl(path, rows)
