"""SORRY-Bench (gated ``sorry-bench/sorry-bench-202406``): base-style prompts in four groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ..prompts import Prompt
from ..records import clean, int_id
from ..splits import SORRYBENCH_GROUPS
from .base import SourceRow, SourceSpec, load_source

SORRYBENCH_REPO = "sorry-bench/sorry-bench-202406"
SORRYBENCH_STYLE = "base"
"""The prompt style kept; the others are rewordings of the same questions."""
SORRYBENCH_FILES = ("question.jsonl", "sorry_bench/question.jsonl")

SORRYBENCH = SourceSpec(
    what="SORRY-Bench", source="sorrybench", repo=SORRYBENCH_REPO, config=None,
    hub_split="train", files=SORRYBENCH_FILES,
    local_hint="path= a copy of question.jsonl from the hub repo",
    columns=("question_id", "category", "turns"),
    hub_data_files="question.jsonl", gated=True)


def sorrybench_split_name(category: int) -> str | None:
    """SORRY-Bench category id (1-44) -> split name; ``None`` outside the paper's groups.

    Example:
        >>> sorrybench_split_name(7)
        'SorryBench_CrimesTorts'
    """
    for name, (lo, hi) in SORRYBENCH_GROUPS.items():
        if lo <= category <= hi:
            return name
    return None


def _rule(i: int, row: dict[str, Any], origin: str) -> SourceRow | None:
    style = clean(row.get("prompt_style")) or SORRYBENCH_STYLE
    if style != SORRYBENCH_STYLE:
        return None
    try:
        category = int(str(row["category"]).strip())
    except ValueError:
        raise UserError(f"{SORRYBENCH.what} ({origin}) row {i}: category {row['category']!r} "
                        "is not a category id") from None
    split = sorrybench_split_name(category)
    if split is None:
        return None
    qid = int_id(row["question_id"])
    return SourceRow(id=f"sorrybench/{qid}", text=row["turns"], split=split, harmful=True,
                     meta={"row": i, "question_id": qid, "category": category,
                           "prompt_style": style})


def load_sorrybench(path: str | Path | None = None) -> list[Prompt]:
    """SORRY-Bench base prompts (``question.jsonl`` of the gated ``sorry-bench/sorry-bench-202406``).

    Rows are ``{"question_id", "category", "turns": [text], "prompt_style"}``; only
    ``prompt_style == "base"`` is kept, and only category ids 1-44 (grouped into the four
    ``SorryBench_*`` splits). Ids are ``sorrybench/<question_id>``.

    Args:
        path: ``None`` for the hub, else ``question.jsonl`` or a folder holding it.

    Example:
        >>> prompts = load_sorrybench("data/sorrybench")  # doctest: +SKIP
    """
    return load_source(SORRYBENCH, path, _rule)
