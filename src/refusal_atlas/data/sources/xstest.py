"""XSTest (``Paul/XSTest``): exaggerated-safety prompts, unsafe ones and their safe look-alikes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ..prompts import Prompt
from ..records import blank, clean, int_id
from ..splits import BENIGN_XSTEST, XSTEST_SPLIT
from .base import SourceRow, SourceSpec, load_source

XSTEST_REPO = "Paul/XSTest"
XSTEST_FILES = ("xstest_prompts.csv",)

XSTEST = SourceSpec(
    what="XSTest", source="xstest", repo=XSTEST_REPO, config=None,
    hub_split="train", files=XSTEST_FILES,
    local_hint="path= a copy of xstest_prompts.csv (github.com/paul-rottger/exaggerated-safety)",
    columns=("prompt", "type", "label"))


def load_xstest(path: str | Path | None = None, *, label: str | None = None) -> list[Prompt]:
    """XSTest prompts (``xstest_prompts.csv``: id, prompt, type, label, focus, note).

    ``label="unsafe"`` gives split ``XSTest_all``; ``label="safe"`` the benign pool
    ``benign_xstest``; ``None`` both. Ids are ``xstest/<id>`` (the CSV's 1-based id).

    Args:
        path: ``None`` for the hub, else ``xstest_prompts.csv`` or a folder holding it.
        label: keep only ``"safe"`` or ``"unsafe"`` prompts (``None``: both).

    Example:
        >>> safe = load_xstest("data/xstest", label="safe")  # doctest: +SKIP
    """
    if label is not None and label not in ("safe", "unsafe"):
        raise UserError(f"label must be 'safe', 'unsafe' or None, not {label!r}")

    def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow | None:
        row_label = str(clean(row["label"]) or "").strip().lower()
        if row_label not in ("safe", "unsafe"):
            raise UserError(f"{XSTEST.what} ({origin}) row {i}: label {row['label']!r} is not "
                            "safe/unsafe")
        if label is not None and row_label != label:
            return None
        xid = int_id(row.get("id"))
        if blank(xid):
            xid = i + 1
        meta = {"row": i, "xstest_id": xid, "type": clean(row["type"]), "label": row_label}
        for key in ("focus", "note"):
            meta[key] = "" if blank(row.get(key)) else clean(row.get(key))
        return SourceRow(id=f"xstest/{xid}", text=row["prompt"],
                         split=XSTEST_SPLIT if row_label == "unsafe" else BENIGN_XSTEST,
                         harmful=row_label == "unsafe", meta=meta)

    return load_source(XSTEST, path, rule)
