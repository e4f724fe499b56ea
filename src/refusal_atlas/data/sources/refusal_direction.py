"""Arditi et al.'s refusal-direction splits (github.com/andyrdt/refusal_direction): local files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ...paths import shared_data_dir
from ..prompts import Prompt
from ..records import clean, read_records
from .base import SourceRow, build_prompts

REFUSAL_DIRECTION_FILES = tuple(
    f"{kind}_{part}.json" for kind in ("harmful", "harmless") for part in ("train", "val", "test")
)


def _files(path: str | Path | None) -> list[Path]:
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError("no shared data folder: pass the refusal_direction folder or file")
        path = shared / "refusal_direction"
    p = Path(path).expanduser()
    if p.is_dir():
        files = [p / n for n in REFUSAL_DIRECTION_FILES if (p / n).is_file()]
        if not files:
            raise UserError(f"{p} has none of {', '.join(REFUSAL_DIRECTION_FILES)}")
        return files
    if p.is_file():
        return [p]
    raise UserError(f"refusal_direction: no such file or folder: {p}")


def load_refusal_direction(path: str | Path | None = None) -> list[Prompt]:
    """Arditi et al.'s splits (``{"instruction", "category"}`` records, andyrdt/refusal_direction).

    ``path`` is one ``harmful_*.json`` / ``harmless_*.json`` file or a folder holding them
    (default: the shared data's ``refusal_direction/``). ``Prompt.split`` is the file stem
    (``harmful_train``, ...); ids are ``refusal_direction/<stem>/<row>``.

    Args:
        path: a file, a folder of them, or ``None`` for the shared data.

    Example:
        >>> prompts = load_refusal_direction("data/refusal_direction/harmful_val.json")  # doctest: +SKIP
    """
    out: list[Prompt] = []
    for file in _files(path):
        stem = file.stem
        if not stem.startswith(("harmful", "harmless")):
            raise UserError(f"{file}: the name must start with harmful_ or harmless_")

        def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow:
            if "instruction" not in row:
                raise UserError(f"{origin} row {i} has no 'instruction'")
            return SourceRow(id=f"refusal_direction/{stem}/{i}", text=row["instruction"],
                             split=stem, harmful=stem.startswith("harmful"),
                             meta={"row": i, "category": clean(row.get("category"))})

        out += build_prompts(read_records(file), rule, origin=str(file),
                             source="refusal_direction", where=lambda i: f"{file} row {i}")
    return out
