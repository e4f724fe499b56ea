"""The one source-loader skeleton: rows in, :class:`~..prompts.Prompt` list out.

A dataset is a :class:`SourceSpec` (where its rows live: hub id, config, split, local file
names, required columns) plus a *row rule*: a function that looks at one row and says
what prompt it is (id, split, harmful, meta) or that the row is skipped. Everything
else (hub or local file, column check, the loop, text validation, building the
``Prompt``) is written once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..prompts import Prompt
from ..records import hub_rows, prompt_text, read_records, require_columns, resolve_local


@dataclass(frozen=True)
class SourceSpec:
    """Where a public dataset's rows live and what they must hold.

    Example:
        >>> spec = SourceSpec(what="XSTest", source="xstest", repo="Paul/XSTest", config=None,
        ...                   hub_split="train", files=("xstest_prompts.csv",),
        ...                   local_hint="path= a copy of xstest_prompts.csv",
        ...                   columns=("prompt", "type", "label"))
    """

    what: str
    """The dataset's name in messages (``WildGuardTest``, ``CoCoNot original``)."""
    source: str
    """``Prompt.source`` of its prompts."""
    repo: str
    """Hugging Face hub dataset id."""
    config: str | None
    hub_split: str
    files: tuple[str, ...]
    """Local file names tried inside a folder ``path``, in order (hub layout or upstream names)."""
    local_hint: str
    """How to pass a local copy, appended to hub errors."""
    columns: tuple[str, ...]
    """Columns every row must have."""
    hub_data_files: str | None = None
    """One file of the hub repo, where the repo holds several variants."""
    gated: bool = False
    """The hub dataset asks users to accept its terms first."""

    def rows(self, path: str | Path | None) -> tuple[list[dict[str, Any]], str]:
        """(rows, origin): from the hub when ``path`` is ``None``, else from the local copy.

        ``origin`` is the hub id or the file, for messages. The columns are checked.
        """
        if path is None:
            rows = hub_rows(self.repo, self.config, self.hub_split, what=self.what,
                            local_hint=self.local_hint, data_files=self.hub_data_files)
            origin = self.repo
        else:
            file = resolve_local(path, self.files, self.what)
            rows, origin = read_records(file), str(file)
        require_columns(rows, self.columns, f"{self.what} ({origin})")
        return rows, origin


@dataclass(frozen=True)
class SourceRow:
    """What a row rule decides about one row."""

    id: str
    text: Any
    """The raw text cell; :func:`build_prompts` checks it."""
    split: str
    harmful: bool
    meta: dict[str, Any]
    source: str | None = None
    """Overrides the loader's ``Prompt.source`` for this row."""


RowRule = Callable[[int, dict[str, Any], str], "SourceRow | None"]
"""``rule(row index, row, origin)`` -> the row's prompt fields, or ``None`` to skip the row.

A rule raises :class:`~...errors.UserError` for a row it cannot read; ``origin`` (the
file or hub id the rows came from) is there for those messages."""


def build_prompts(rows: Sequence[dict[str, Any]], rule: RowRule, *, origin: str, source: str,
                  where: Callable[[int], str]) -> list[Prompt]:
    """Apply ``rule`` to every row and build the prompts of the rows it keeps.

    Args:
        rows: the records, in file order (the prompts keep that order).
        rule: the dataset's row rule.
        origin: where the rows came from, passed to ``rule``.
        source: ``Prompt.source`` unless the rule gives one.
        where: row index -> location for the empty-text error.
    """
    out: list[Prompt] = []
    for i, row in enumerate(rows):
        got = rule(i, row, origin)
        if got is None:
            continue
        out.append(Prompt(
            id=got.id,
            text=prompt_text(got.text, where=where(i)),
            split=got.split,
            harmful=got.harmful,
            source=got.source if got.source is not None else source,
            meta=got.meta,
        ))
    return out


def load_source(spec: SourceSpec, path: str | Path | None, rule: RowRule) -> list[Prompt]:
    """The prompts of a public dataset: its rows (hub or local copy) through ``rule``.

    Args:
        spec: the dataset.
        path: ``None`` for the hub, else a local file or a folder holding one of
            ``spec.files``.
        rule: the dataset's row rule.

    Example:
        >>> prompts = load_source(XSTEST, "data/xstest", xstest_rule)  # doctest: +SKIP
    """
    rows, origin = spec.rows(path)
    return build_prompts(rows, rule, origin=origin, source=spec.source,
                         where=lambda i: f"{spec.what} row {i}")
