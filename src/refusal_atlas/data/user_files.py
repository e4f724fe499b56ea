"""User prompt files and folders: :func:`load_prompt_file`, and the suites built from them.

Layouts (one file, a folder of per-split files, a paper-style folder) are in
``docs/data.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from .paper import PAPER_BENIGN_FILE, is_paper_records, load_paper_source_file, paper_prompts
from .prompts import Prompt, PromptSuite, assemble_suite, with_split
from .records import as_bool, blank, clean, int_id, pick_column, read_records
from .sources.base import SourceRow, build_prompts

TEXT_COLUMNS = ("prompt", "text", "instruction", "question")
SPLIT_COLUMNS = ("split", "category")
HARMFUL_COLUMNS = ("harmful", "is_harmful", "label", "prompt_harm_label")
ID_COLUMNS = ("id",)
PROMPT_FILE_SUFFIXES = (".json", ".jsonl", ".csv")
USER_BENIGN_POOL = "benign"


def load_prompt_file(path: str | Path, *, split: str | None = None, harmful: bool | None = None,
                     id_prefix: str | None = None) -> list[Prompt]:
    """Prompts from a user JSON (list of objects), JSONL or CSV file.

    Columns (case-insensitive): text in the first of ``prompt``/``text``/``instruction``/
    ``question``; optional split in ``split`` or ``category``; optional harmfulness in
    ``harmful``/``is_harmful``/``label``/``prompt_harm_label`` (true/false, 1/0,
    harmful/unharmful, unsafe/safe); optional ``id``. Without a harmfulness column a row
    is benign if its category is ``benign``, else harmful. Harmful rows get their
    split/category (or the file stem) as ``Prompt.split``; benign rows get the pool
    ``benign``. ``split=``/``harmful=`` override the columns for every row. The paper's
    ``sources/*.json`` schema is detected and loaded with :func:`load_paper_source_file`.
    Ids are ``<id_prefix>/<id or 0-based row>`` with ``id_prefix`` defaulting to
    ``user/<file stem>``; other columns go to ``meta``.

    Args:
        path: the file.
        split: ``Prompt.split`` of every row (``None``: from the columns).
        harmful: harmfulness of every row (``None``: from the columns).
        id_prefix: prefix of the ids (``None``: ``user/<file stem>``).

    Example:
        >>> prompts = load_prompt_file("my_prompts.csv")  # doctest: +SKIP
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{path} is a folder; expected a .json, .jsonl or .csv file")
    if path.suffix.lower() not in PROMPT_FILE_SUFFIXES + (".tsv",):
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use "
                        ".json, .jsonl or .csv")
    rows = read_records(path)
    if not rows:
        raise UserError(f"{path} has no prompts")
    if is_paper_records(rows):
        return paper_prompts(rows, path, split=split)
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys:
                keys.append(k)
    text_col = pick_column(keys, TEXT_COLUMNS)
    if text_col is None:
        raise UserError(f"{path} has no prompt column: expected one of {list(TEXT_COLUMNS)}, "
                        f"found {keys}")
    split_col = pick_column(keys, SPLIT_COLUMNS)
    harm_col = pick_column(keys, HARMFUL_COLUMNS)
    id_col = pick_column(keys, ID_COLUMNS)
    prefix = id_prefix if id_prefix is not None else f"user/{path.stem}"
    seen: set[str] = set()

    def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow:
        where = f"{origin} row {i + 1}"
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{where} has no text in column {text_col!r}")
        category = row.get(split_col) if split_col else None
        category = None if blank(category) else str(category).strip()
        if harmful is not None:
            is_harmful = harmful
        elif harm_col is not None and not blank(row.get(harm_col)):
            is_harmful = as_bool(row[harm_col], where=f"{where} column {harm_col!r}")
        else:
            is_harmful = (category or "").lower() != "benign"
        if split is not None:
            name = split
        elif is_harmful:
            name = category or path.stem
        else:
            name = "benign"
        rid = row.get(id_col) if id_col else None
        rid = str(int_id(rid)) if not blank(rid) else str(i)
        pid = f"{prefix}/{rid}"
        if pid in seen:
            raise UserError(f"{where}: id {rid!r} is used twice in the file")
        seen.add(pid)
        meta = {str(k): clean(v) for k, v in row.items() if k not in (text_col, id_col)}
        meta["row"] = i
        return SourceRow(id=pid, text=text, split=name, harmful=is_harmful, meta=meta)

    # the rule has already checked the text with its own message
    return build_prompts(rows, rule, origin=str(path), source="user",
                         where=lambda i: f"{path} row {i + 1}")


# --------------------------------------------------------------------------- user suites


def load_user_suite(path: str | Path) -> PromptSuite:
    """A suite from a user file or folder (layouts in ``docs/data.md``).

    Args:
        path: one prompt file, a folder of per-split files, or a paper-style folder.

    Example:
        >>> suite = load_user_suite("my_prompts/")  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    if p.is_file():
        return _file_suite(p)
    if p.is_dir():
        sources_dir = _paper_style_dir(p)
        if sources_dir is not None:
            return _paper_style_suite(p, sources_dir)
        return _folder_suite(p)
    raise UserError(f"no such file or folder: {p}")


def _file_suite(path: Path) -> PromptSuite:
    prompts = load_prompt_file(path)
    harmful = [p for p in prompts if p.harmful]
    benign = with_split([p for p in prompts if not p.harmful], USER_BENIGN_POOL)
    if not benign:
        raise UserError(f"{path} has no benign prompts: a suite needs some (rows with "
                        "harmful=false, or category 'benign')")
    if not harmful:
        raise UserError(f"{path} has only benign prompts: a suite needs non-compliant ones too")
    return assemble_suite(f"user:{path.name}", harmful, benign, lambda s: USER_BENIGN_POOL)


def _paper_style_dir(p: Path) -> Path | None:
    for cand in (p, p / "sources"):
        if (cand / PAPER_BENIGN_FILE).is_file():
            return cand
    return None


def _paper_style_suite(root: Path, d: Path) -> PromptSuite:
    harmful: list[Prompt] = []
    benign: list[Prompt] = []
    own_pools: set[str] = set()
    for f in sorted(d.glob("*.json")):
        if f.name == PAPER_BENIGN_FILE:
            benign += load_paper_source_file(f, split=USER_BENIGN_POOL)
        elif f.stem.startswith("_BC_"):
            split = f.stem[len("_BC_"):]
            own_pools.add(split)
            benign += load_paper_source_file(f, split=f"benign_{split}")
        elif not f.stem.startswith(("_", ".")):
            prompts = load_paper_source_file(f)
            harmful += [p for p in prompts if p.harmful]
            benign += with_split([p for p in prompts if not p.harmful], USER_BENIGN_POOL)
    return assemble_suite(f"user:{root.name}", harmful, benign,
                          lambda s: f"benign_{s}" if s in own_pools else USER_BENIGN_POOL)


def _folder_suite(d: Path) -> PromptSuite:
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in
                   PROMPT_FILE_SUFFIXES and not f.name.startswith((".", "_")))
    if not files:
        raise UserError(f"{d} holds no prompt files (.json, .jsonl or .csv)")
    harmful: list[Prompt] = []
    benign: list[Prompt] = []
    own_pools: set[str] = set()
    stems = [f.stem for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise UserError(f"{d}: more than one file for {dup}; keep one file per split")
    for f in files:
        if f.stem == "benign":
            benign += load_prompt_file(f, split=USER_BENIGN_POOL, harmful=False,
                                       id_prefix=f"user/{d.name}/benign")
        elif f.stem.startswith("benign_"):
            split = f.stem[len("benign_"):]
            own_pools.add(split)
            benign += load_prompt_file(f, split=f.stem, harmful=False,
                                       id_prefix=f"user/{d.name}/{f.stem}")
        else:
            harmful += load_prompt_file(f, split=f.stem, harmful=True,
                                        id_prefix=f"user/{d.name}/{f.stem}")
    unknown = sorted(own_pools - {p.split for p in harmful})
    if unknown:
        raise UserError(f"{d}: benign_<split> file(s) for unknown split(s) {unknown}")
    return assemble_suite(f"user:{d.name}", harmful, benign,
                          lambda s: f"benign_{s}" if s in own_pools else USER_BENIGN_POOL)
