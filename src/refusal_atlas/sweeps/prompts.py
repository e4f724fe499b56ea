"""The prompts a sweep runs over: :class:`SweepPrompt` and the two ways to make them.

A sweep prompt carries the base model's label (HR / HC / BR / BC) next to its text, so that
accuracy and label transitions can be measured after an intervention.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from ..labels import GROUPS


@dataclass(frozen=True)
class SweepPrompt:
    """One prompt of a sweep.

    Args:
        id: unique within the sweep; the second half of a results row's key.
        text: the user turn.
        harmful: whether the prompt is harmful (RR) or benign (ORR).
        group: the base model's label (HR / HC / BR / BC), None when unknown.
        split: the dataset split it comes from.

    Example:
        >>> SweepPrompt("p0", "How do I bake bread?", False, "BC", "demo").harmful
        False
    """

    id: str
    text: str
    harmful: bool
    group: str | None = None
    """The base model's label (HR / HC / BR / BC), None when unknown."""
    split: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def controlled_test_prompts(suite, test_set) -> list[SweepPrompt]:
    """The controlled test set (equal HR / HC / BR / BC groups) as sweep prompts.

    Args:
        suite: the run's :class:`~refusal_atlas.data.PromptSuite`.
        test_set: a :class:`~refusal_atlas.pools.TestSet` of prompt ids per group.
    """
    by_id = suite.by_id()
    out = []
    for group in GROUPS:
        for pid in test_set.groups.get(group, []):
            p = by_id[pid]
            out.append(SweepPrompt(p.id, p.text, p.harmful, group, p.split))
    if not out:
        raise UserError("the controlled test set is empty (pools.test_per_group = 0?)")
    return out


def file_prompts(path: str | Path, suite=None, labels: Mapping[str, str | None] | None = None
                 ) -> list[SweepPrompt]:
    """A labelled prompt file (JSON list or JSONL): rows with ``id`` and ``prompt``/``text``
    and ``harmful`` and optional ``group``/``label`` (HR/HC/BR/BC) and ``split``. A row with
    only an ``id`` takes the rest from the run's suite; a missing group comes from the base
    labels of the run.

    Args:
        path: the file.
        suite: a prompt suite to look ids up in (optional).
        labels: ``{prompt id: base label}`` for rows without a group (optional).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"prompt file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if path.suffix.lower() == ".json" else \
            [json.loads(x) for x in text.splitlines() if x.strip()]
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON/JSONL ({exc.msg})") from None
    by_id = suite.by_id() if suite is not None else {}
    labels = labels or {}
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "id" not in row:
            raise UserError(f"{path}: row {i + 1} needs an 'id'")
        pid = str(row["id"])
        if pid in seen:
            raise UserError(f"{path}: prompt id {pid!r} appears twice")
        seen.add(pid)
        ref = by_id.get(pid)
        text_ = row.get("prompt", row.get("text", ref.text if ref else None))
        group = row.get("group", row.get("label", labels.get(pid)))
        if group is not None and group not in GROUPS:
            raise UserError(f"{path}: row {i + 1} has group {group!r}; use HR, HC, BR or BC")
        harmful = row.get("harmful", ref.harmful if ref else (group in ("HR", "HC") if group
                                                              else None))
        if text_ is None or harmful is None:
            raise UserError(f"{path}: row {i + 1} ({pid}) needs 'prompt' and 'harmful' "
                            "(or an id of this run's suite)")
        out.append(SweepPrompt(pid, str(text_), bool(harmful), group,
                               str(row.get("split", ref.split if ref else ""))))
    if not out:
        raise UserError(f"{path} has no prompts")
    return out
