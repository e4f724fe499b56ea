"""CoCoNot (``allenai/coconot``): non-compliance requests by category, and their contrast set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ..prompts import Prompt
from ..records import clean
from ..splits import BENIGN_COCONOT_CONTRAST
from .base import SourceRow, SourceSpec, load_source

COCONOT_REPO = "allenai/coconot"
COCONOT_FILES = {
    # GitHub (allenai/noncompliance data/) names first, then the hub repo's layout.
    "original": ("coconot_eval.jsonl", "original/coconot_test.jsonl", "coconot_test.jsonl"),
    "contrast": ("coconot_contrast_eval.jsonl", "contrast/test.jsonl",
                 "contrast/coconot_contrast_eval.jsonl"),
}

COCONOT = {
    config: SourceSpec(
        what=f"CoCoNot {config}", source="coconot", repo=COCONOT_REPO, config=config,
        hub_split="test", files=files,
        local_hint=(f"path= a copy of {files[0]} (github.com/allenai/noncompliance) "
                    f"or {files[1]}"),
        columns=("id", "category", "prompt"))
    for config, files in COCONOT_FILES.items()
}
"""One spec per hub config (``original``, ``contrast``)."""

_COCONOT_KEYS = {
    "safety": "CocoNot_Safety",
    "incomplete": "CocoNot_Incomplete",
    "indeterminate": "CocoNot_Indeterminate",
    "humanizing": "CocoNot_Humanizing",
    "humanising": "CocoNot_Humanizing",
    "unsupported": "CocoNot_Unsupported",
}


def coconot_split_name(category: str) -> str:
    """Map a CoCoNot category ("Requests with safety concerns", "safety", ...) to a split name.

    Example:
        >>> coconot_split_name("Requests with safety concerns")
        'CocoNot_Safety'
    """
    s = str(category).strip().lower().replace("_", " ")
    s = s.removeprefix("coconot ").removeprefix("requests with ").removeprefix("request with ")
    first = s.split()[0] if s.split() else ""
    if first in _COCONOT_KEYS:
        return _COCONOT_KEYS[first]
    raise UserError(f"unknown CoCoNot category {category!r}")


def load_coconot(path: str | Path | None = None, *, config: str = "original") -> list[Prompt]:
    """CoCoNot test prompts (``allenai/coconot``, config ``original`` or ``contrast``, split test).

    ``original``: every prompt is non-compliant; ``Prompt.split`` is the category's split
    name (``CocoNot_Safety``, ...). ``contrast``: benign look-alikes in the pool
    ``benign_coconot_contrast``, with the matching split name in ``meta["coconot_split"]``.
    Ids are ``coconot/<config>/<id>``.

    Args:
        path: ``None`` for the hub, else the config's file or a folder holding it.
        config: ``"original"`` or ``"contrast"``.

    Example:
        >>> prompts = load_coconot("data/coconot")  # doctest: +SKIP
    """
    if config not in COCONOT_FILES:
        raise UserError(f"CoCoNot config must be one of {sorted(COCONOT_FILES)}, not {config!r}")
    spec = COCONOT[config]
    original = config == "original"

    def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow:
        try:
            split = coconot_split_name(row["category"])
        except UserError as exc:
            raise UserError(f"{spec.what} ({origin}) row {i}: {exc}") from None
        meta = {"row": i, "coconot_id": row["id"], "category": row["category"],
                "subcategory": clean(row.get("subcategory")), "coconot_split": split}
        return SourceRow(id=f"coconot/{config}/{row['id']}", text=row["prompt"],
                         split=split if original else BENIGN_COCONOT_CONTRAST,
                         harmful=original, meta=meta)

    return load_source(spec, path, rule)


def load_coconot_contrast(path: str | Path | None = None) -> list[Prompt]:
    """The CoCoNot contrast set (benign); see :func:`load_coconot`."""
    return load_coconot(path, config="contrast")
