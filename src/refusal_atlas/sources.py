"""Adapters that turn public prompt datasets and user files into :class:`~.prompts.Prompt` lists.

Every public-dataset adapter takes ``path=``: ``None`` loads the dataset from the Hugging
Face hub with ``datasets`` (ids, configs and splits are the module constants below), a
file or folder loads a local copy with the same schema (the hub's file layout or the
upstream GitHub file names both work). Hub problems (gated dataset, no network) become
one :class:`~.errors.UserError` that says what to do.

Prompt ids are stable and derived from the source row (``wildguardtest/123``,
``xstest/17``, ``coconot/original/bajp42a``, ``sorrybench/392``,
``paper/CocoNot_Safety/coconot-0``); the source's own fields go to ``Prompt.meta``.
Prompts of the non-compliant side get the paper's split name as ``Prompt.split``;
benign prompts get the name of the benign pool they belong to. See ``docs/data.md``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UserError
from .paths import shared_data_dir
from .prompts import Prompt

# --------------------------------------------------------------------------- names

WILDGUARD_SPLIT = "WildGuard_all"
XSTEST_SPLIT = "XSTest_all"
COCONOT_SPLITS = (
    "CocoNot_Humanizing",
    "CocoNot_Incomplete",
    "CocoNot_Indeterminate",
    "CocoNot_Safety",
    "CocoNot_Unsupported",
)
SORRYBENCH_GROUPS: dict[str, tuple[int, int]] = {
    "SorryBench_HateSpeech": (1, 5),
    "SorryBench_CrimesTorts": (6, 24),
    "SorryBench_Inappropriate": (25, 39),
    "SorryBench_Advice": (40, 44),
}
PAPER_SPLITS: tuple[str, ...] = (
    WILDGUARD_SPLIT,
    XSTEST_SPLIT,
    *COCONOT_SPLITS,
    *SORRYBENCH_GROUPS,
)
"""The paper's 11 non-compliant splits, in METHOD.md order."""

BENIGN_GENERAL = "benign_general"
"""Benign pool for every split but XSTest's (WildGuardTest benign prompts in the paper)."""
BENIGN_XSTEST = "benign_xstest"
"""Benign pool for XSTest_all (XSTest safe prompts)."""
BENIGN_COCONOT_CONTRAST = "benign_coconot_contrast"
"""CoCoNot contrast set: benign look-alikes of CoCoNot's non-compliance requests."""

# --------------------------------------------------------------------------- hub ids

WILDGUARD_REPO = "allenai/wildguardmix"
WILDGUARD_CONFIG = "wildguardtest"
WILDGUARD_HUB_SPLIT = "test"
WILDGUARD_FILES = ("test/wildguard_test.parquet", "wildguard_test.parquet")
"""Local names tried in a folder: the hub repo's layout first."""

XSTEST_REPO = "Paul/XSTest"
XSTEST_CONFIG: str | None = None
XSTEST_HUB_SPLIT = "train"
XSTEST_FILES = ("xstest_prompts.csv",)

COCONOT_REPO = "allenai/coconot"
COCONOT_HUB_SPLIT = "test"
COCONOT_FILES = {
    # GitHub (allenai/noncompliance data/) names first, then the hub repo's layout.
    "original": ("coconot_eval.jsonl", "original/coconot_test.jsonl", "coconot_test.jsonl"),
    "contrast": ("coconot_contrast_eval.jsonl", "contrast/test.jsonl",
                 "contrast/coconot_contrast_eval.jsonl"),
}

SORRYBENCH_REPO = "sorry-bench/sorry-bench-202406"
SORRYBENCH_HUB_FILE = "question.jsonl"
SORRYBENCH_HUB_SPLIT = "train"
SORRYBENCH_STYLE = "base"
SORRYBENCH_FILES = ("question.jsonl", "sorry_bench/question.jsonl")

GATED = {WILDGUARD_REPO, SORRYBENCH_REPO}

# --------------------------------------------------------------------------- local data

PAPER_BENIGN_FILE = "_BC_source.json"
PAPER_CONTROLLED_FILES = {
    "HR": "harmful_refusals_50.json",
    "HC": "harmful_compliance_50.json",
    "BR": "unharmful_refusals_50.json",
    "BC": "unharmful_compliance_50.json",
}
REFUSAL_DIRECTION_FILES = tuple(
    f"{kind}_{part}.json" for kind in ("harmful", "harmless") for part in ("train", "val", "test")
)

TEXT_COLUMNS = ("prompt", "text", "instruction", "question")
SPLIT_COLUMNS = ("split", "category")
HARMFUL_COLUMNS = ("harmful", "is_harmful", "label", "prompt_harm_label")
ID_COLUMNS = ("id",)
_TRUE = {"1", "1.0", "true", "yes", "y", "harmful", "unsafe", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "unharmful", "harmless", "benign", "safe", "f"}
PROMPT_FILE_SUFFIXES = (".json", ".jsonl", ".csv")


# --------------------------------------------------------------------------- reading files


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON (list of objects), JSONL, CSV/TSV or Parquet file, as dicts.

    Any problem with the file is one :class:`UserError`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            rows = _read_jsonl(path)
        elif suffix == ".json":
            rows = _read_json(path)
        elif suffix in (".csv", ".tsv"):
            rows = _read_csv(path, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".parquet":
            rows = _read_parquet(path)
        else:
            raise UserError(f"{path}: unsupported file type {suffix or '(none)'!r}; "
                            "use .json, .jsonl, .csv or .parquet")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    return rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path} line {lineno} is not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {lineno} is not a JSON object")
            rows.append(row)
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        hint = " (one JSON object per line? name it .jsonl)" if "Extra data" in exc.msg else ""
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}){hint}") from None
    if isinstance(data, dict):
        lists = [k for k in ("prompts", "data", "rows") if isinstance(data.get(k), list)]
        if not lists:
            raise UserError(f"{path} must hold a JSON list of objects (or an object with a "
                            "'prompts' list)")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise UserError(f"{path} must hold a JSON list of objects")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise UserError(f"{path}: item {i} is not a JSON object")
    return data


def _read_csv(path: Path, delimiter: str) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        try:
            reader = csv.DictReader(fh, delimiter=delimiter)
            rows = []
            for row in reader:
                if None in row:
                    raise UserError(f"{path} line {reader.line_num} has more fields than the "
                                    "header")
                rows.append(dict(row))
        except csv.Error as exc:
            raise UserError(f"{path} is not valid CSV ({exc})") from None
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path} is not a readable Parquet file ({exc})") from None


def _resolve_local(path: str | Path, candidates: Sequence[str], what: str) -> Path:
    """``path`` itself if it is a file, else the first of ``candidates`` inside it."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        for name in candidates:
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p} has no {what} file (looked for {', '.join(candidates)})")
    raise UserError(f"{what}: no such file or folder: {p}")


def find_local(directory: str | Path, candidates: Sequence[str]) -> Path | None:
    """The first of ``candidates`` that exists under ``directory`` (``None`` if none)."""
    d = Path(directory).expanduser()
    for name in candidates:
        if (d / name).is_file():
            return d / name
    return None


# --------------------------------------------------------------------------- hub access


def _hub_rows(repo_id: str, config: str | None, split: str, *, what: str, local_hint: str,
              data_files: str | None = None) -> list[dict[str, Any]]:
    """Rows of a hub dataset via ``datasets.load_dataset``; failures become one UserError."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - a declared dependency
        raise UserError(f"loading {what} from the hub needs the `datasets` package; "
                        f"install it or pass local files ({local_hint})") from None
    kwargs: dict[str, Any] = {"split": split}
    if data_files is not None:
        kwargs["data_files"] = data_files
    try:
        ds = datasets.load_dataset(repo_id, config, **kwargs)
    except Exception as exc:  # noqa: BLE001 - classified below
        raise hub_error(repo_id, what, local_hint, exc) from None
    return [dict(row) for row in ds]


def hub_error(repo_id: str, what: str, local_hint: str, exc: BaseException) -> UserError:
    """Turn an exception from ``datasets``/``huggingface_hub`` into one actionable UserError."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = {cls.__name__ for err in chain for cls in type(err).__mro__}
    text = " ".join(str(err) for err in chain).lower()
    url = f"https://huggingface.co/datasets/{repo_id}"
    if "GatedRepoError" in names or "gated" in text:
        return UserError(
            f"{what} ({repo_id}) is a gated dataset: accept its terms at {url} while logged "
            f"in, then run `huggingface-cli login` (or set HF_TOKEN); or pass local files "
            f"({local_hint})")
    network = {"ConnectionError", "Timeout", "TimeoutError", "ConnectError", "ConnectTimeout",
               "LocalEntryNotFoundError", "OfflineModeIsEnabled", "ProxyError", "SSLError"}
    if names & network or any(s in text for s in (
            "couldn't reach", "could not reach", "offline", "name or service not known",
            "temporary failure in name resolution", "connection", "timed out")):
        return UserError(
            f"cannot reach the Hugging Face hub to load {what} ({repo_id}); pass local files "
            f"instead ({local_hint})")
    if names & {"RepositoryNotFoundError", "DatasetNotFoundError"} or "401" in text:
        return UserError(
            f"{what} ({repo_id}) was not found on the hub or needs a login ({url}; "
            f"`huggingface-cli login`); or pass local files ({local_hint})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"could not load {what} ({repo_id}) from the hub: {first}; pass local "
                     f"files instead ({local_hint})")


# --------------------------------------------------------------------------- small helpers


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def _clean(value: Any) -> Any:
    """JSON-friendly scalar: NaN/None -> None, numpy scalars -> Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, dict)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def _as_bool(value: Any, *, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not _blank(value) and value in (0, 1):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise UserError(f"{where}: cannot read {value!r} as harmful/benign (use true/false, 1/0, "
                    "harmful/unharmful or unsafe/safe)")


def _require_columns(rows: list[dict[str, Any]], needed: Iterable[str], what: str) -> None:
    if not rows:
        raise UserError(f"{what}: no rows")
    have = set(rows[0])
    missing = [c for c in needed if c not in have]
    if missing:
        raise UserError(f"{what}: missing column(s) {missing}; found {sorted(have)}")


def _text(value: Any, *, where: str) -> str:
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: empty or non-text prompt")
    return value


def _int_id(value: Any) -> Any:
    value = _clean(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


# --------------------------------------------------------------------------- WildGuardTest


def load_wildguardtest(path: str | Path | None = None, *,
                       harm: str | None = None) -> list[Prompt]:
    """Non-adversarial WildGuardTest prompts (``allenai/wildguardmix``, config ``wildguardtest``).

    ``harm="harmful"`` gives split ``WildGuard_all``, ``harm="unharmful"`` the benign pool
    ``benign_general``, ``None`` both. Rows without a ``prompt_harm_label`` are dropped.
    Ids are ``wildguardtest/<row>`` (0-based row of the test split); ``meta`` holds
    ``row``, ``vanilla_idx`` (position among the non-adversarial rows), ``subcategory``,
    ``prompt_harm_label`` and the annotator agreement when present.
    """
    if harm is not None:
        key = harm.strip().lower()
        if key in ("benign", "safe"):
            key = "unharmful"
        if key not in ("harmful", "unharmful"):
            raise UserError(f"harm must be 'harmful', 'unharmful' or None, not {harm!r}")
        harm = key
    what = "WildGuardTest"
    hint = f"path= a copy of {WILDGUARD_FILES[0]} or a folder holding it"
    if path is None:
        rows = _hub_rows(WILDGUARD_REPO, WILDGUARD_CONFIG, WILDGUARD_HUB_SPLIT, what=what,
                         local_hint=hint)
        origin = WILDGUARD_REPO
    else:
        file = _resolve_local(path, WILDGUARD_FILES, what)
        rows, origin = read_records(file), str(file)
    _require_columns(rows, ("prompt", "adversarial", "prompt_harm_label"), f"{what} ({origin})")
    out: list[Prompt] = []
    vanilla = -1
    for i, row in enumerate(rows):
        if _as_bool(row["adversarial"], where=f"{what} row {i} column 'adversarial'"):
            continue
        vanilla += 1
        label = _clean(row["prompt_harm_label"])
        if label not in ("harmful", "unharmful") or (harm is not None and label != harm):
            continue
        meta = {"row": i, "vanilla_idx": vanilla, "prompt_harm_label": label,
                "subcategory": _clean(row.get("subcategory"))}
        for key in ("prompt_harm_agreement",):
            if key in row:
                meta[key] = _clean(row[key])
        out.append(Prompt(
            id=f"wildguardtest/{i}",
            text=_text(row["prompt"], where=f"{what} row {i}"),
            split=WILDGUARD_SPLIT if label == "harmful" else BENIGN_GENERAL,
            harmful=label == "harmful",
            source="wildguardtest",
            meta=meta,
        ))
    return out


def wildguardtest_pools(path: str | Path | None = None) -> tuple[list[Prompt], list[Prompt]]:
    """(harmful, benign) non-adversarial WildGuardTest prompts from one load."""
    prompts = load_wildguardtest(path)
    return [p for p in prompts if p.harmful], [p for p in prompts if not p.harmful]


# --------------------------------------------------------------------------- XSTest


def load_xstest(path: str | Path | None = None, *, label: str | None = None) -> list[Prompt]:
    """XSTest prompts (``xstest_prompts.csv``: id, prompt, type, label, focus, note).

    ``label="unsafe"`` gives split ``XSTest_all``; ``label="safe"`` the benign pool
    ``benign_xstest``; ``None`` both. Ids are ``xstest/<id>`` (the CSV's 1-based id).
    """
    if label is not None and label not in ("safe", "unsafe"):
        raise UserError(f"label must be 'safe', 'unsafe' or None, not {label!r}")
    what = "XSTest"
    hint = "path= a copy of xstest_prompts.csv (github.com/paul-rottger/exaggerated-safety)"
    if path is None:
        rows = _hub_rows(XSTEST_REPO, XSTEST_CONFIG, XSTEST_HUB_SPLIT, what=what, local_hint=hint)
        origin = XSTEST_REPO
    else:
        file = _resolve_local(path, XSTEST_FILES, what)
        rows, origin = read_records(file), str(file)
    _require_columns(rows, ("prompt", "type", "label"), f"{what} ({origin})")
    out: list[Prompt] = []
    for i, row in enumerate(rows):
        row_label = str(_clean(row["label"]) or "").strip().lower()
        if row_label not in ("safe", "unsafe"):
            raise UserError(f"{what} ({origin}) row {i}: label {row['label']!r} is not "
                            "safe/unsafe")
        if label is not None and row_label != label:
            continue
        xid = _int_id(row.get("id"))
        if _blank(xid):
            xid = i + 1
        meta = {"row": i, "xstest_id": xid, "type": _clean(row["type"]), "label": row_label}
        for key in ("focus", "note"):
            meta[key] = "" if _blank(row.get(key)) else _clean(row.get(key))
        out.append(Prompt(
            id=f"xstest/{xid}",
            text=_text(row["prompt"], where=f"{what} row {i}"),
            split=XSTEST_SPLIT if row_label == "unsafe" else BENIGN_XSTEST,
            harmful=row_label == "unsafe",
            source="xstest",
            meta=meta,
        ))
    return out


# --------------------------------------------------------------------------- CoCoNot

_COCONOT_KEYS = {
    "safety": "CocoNot_Safety",
    "incomplete": "CocoNot_Incomplete",
    "indeterminate": "CocoNot_Indeterminate",
    "humanizing": "CocoNot_Humanizing",
    "humanising": "CocoNot_Humanizing",
    "unsupported": "CocoNot_Unsupported",
}


def coconot_split_name(category: str) -> str:
    """Map a CoCoNot category ("Requests with safety concerns", "safety", ...) to a split name."""
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
    """
    if config not in COCONOT_FILES:
        raise UserError(f"CoCoNot config must be one of {sorted(COCONOT_FILES)}, not {config!r}")
    what = f"CoCoNot {config}"
    hint = (f"path= a copy of {COCONOT_FILES[config][0]} (github.com/allenai/noncompliance) "
            f"or {COCONOT_FILES[config][1]}")
    if path is None:
        rows = _hub_rows(COCONOT_REPO, config, COCONOT_HUB_SPLIT, what=what, local_hint=hint)
        origin = COCONOT_REPO
    else:
        file = _resolve_local(path, COCONOT_FILES[config], what)
        rows, origin = read_records(file), str(file)
    _require_columns(rows, ("id", "category", "prompt"), f"{what} ({origin})")
    out: list[Prompt] = []
    for i, row in enumerate(rows):
        try:
            split = coconot_split_name(row["category"])
        except UserError as exc:
            raise UserError(f"{what} ({origin}) row {i}: {exc}") from None
        meta = {"row": i, "coconot_id": row["id"], "category": row["category"],
                "subcategory": _clean(row.get("subcategory")), "coconot_split": split}
        out.append(Prompt(
            id=f"coconot/{config}/{row['id']}",
            text=_text(row["prompt"], where=f"{what} row {i}"),
            split=split if config == "original" else BENIGN_COCONOT_CONTRAST,
            harmful=config == "original",
            source="coconot",
            meta=meta,
        ))
    return out


def load_coconot_contrast(path: str | Path | None = None) -> list[Prompt]:
    """The CoCoNot contrast set (benign); see :func:`load_coconot`."""
    return load_coconot(path, config="contrast")


# --------------------------------------------------------------------------- SORRY-Bench


def sorrybench_split_name(category: int) -> str | None:
    """SORRY-Bench category id (1-44) -> split name; ``None`` outside the paper's groups."""
    for name, (lo, hi) in SORRYBENCH_GROUPS.items():
        if lo <= category <= hi:
            return name
    return None


def load_sorrybench(path: str | Path | None = None) -> list[Prompt]:
    """SORRY-Bench base prompts (``question.jsonl`` of the gated ``sorry-bench/sorry-bench-202406``).

    Rows are ``{"question_id", "category", "turns": [text], "prompt_style"}``; only
    ``prompt_style == "base"`` is kept, and only category ids 1-44 (grouped into the four
    ``SorryBench_*`` splits). Ids are ``sorrybench/<question_id>``.
    """
    what = "SORRY-Bench"
    hint = "path= a copy of question.jsonl from the hub repo"
    if path is None:
        rows = _hub_rows(SORRYBENCH_REPO, None, SORRYBENCH_HUB_SPLIT, what=what, local_hint=hint,
                         data_files=SORRYBENCH_HUB_FILE)
        origin = SORRYBENCH_REPO
    else:
        file = _resolve_local(path, SORRYBENCH_FILES, what)
        rows, origin = read_records(file), str(file)
    _require_columns(rows, ("question_id", "category", "turns"), f"{what} ({origin})")
    out: list[Prompt] = []
    for i, row in enumerate(rows):
        style = _clean(row.get("prompt_style")) or SORRYBENCH_STYLE
        if style != SORRYBENCH_STYLE:
            continue
        try:
            category = int(str(row["category"]).strip())
        except ValueError:
            raise UserError(f"{what} ({origin}) row {i}: category {row['category']!r} is not "
                            "a category id") from None
        split = sorrybench_split_name(category)
        if split is None:
            continue
        qid = _int_id(row["question_id"])
        out.append(Prompt(
            id=f"sorrybench/{qid}",
            text=_text(row["turns"], where=f"{what} row {i}"),
            split=split,
            harmful=True,
            source="sorrybench",
            meta={"row": i, "question_id": qid, "category": category, "prompt_style": style},
        ))
    return out


# --------------------------------------------------------------------------- refusal_direction


def load_refusal_direction(path: str | Path | None = None) -> list[Prompt]:
    """Arditi et al.'s splits (``{"instruction", "category"}`` records, andyrdt/refusal_direction).

    ``path`` is one ``harmful_*.json`` / ``harmless_*.json`` file or a folder holding them
    (default: the shared data's ``refusal_direction/``). ``Prompt.split`` is the file stem
    (``harmful_train``, ...); ids are ``refusal_direction/<stem>/<row>``.
    """
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
    elif p.is_file():
        files = [p]
    else:
        raise UserError(f"refusal_direction: no such file or folder: {p}")
    out: list[Prompt] = []
    for file in files:
        stem = file.stem
        if not stem.startswith(("harmful", "harmless")):
            raise UserError(f"{file}: the name must start with harmful_ or harmless_")
        rows = read_records(file)
        for i, row in enumerate(rows):
            if "instruction" not in row:
                raise UserError(f"{file} row {i} has no 'instruction'")
            out.append(Prompt(
                id=f"refusal_direction/{stem}/{i}",
                text=_text(row["instruction"], where=f"{file} row {i}"),
                split=stem,
                harmful=stem.startswith("harmful"),
                source="refusal_direction",
                meta={"row": i, "category": _clean(row.get("category"))},
            ))
    return out


# --------------------------------------------------------------------------- paper subsets


def is_paper_records(rows: list[dict[str, Any]]) -> bool:
    """True if rows look like the paper's ``sources/*.json`` records."""
    return bool(rows) and all(
        "prompt" in r and "prompt_harm_label" in r and isinstance(r.get("source"), dict)
        and "dataset" in r["source"] and "idx" in r["source"] for r in rows)


def paper_sources_dir(path: str | Path | None = None) -> Path:
    """Resolve the folder of the paper's ``<split>.json`` files.

    Accepts the ``sources`` folder itself, its parent (``paper/``) or the shared data
    root (which holds ``paper/sources``); default: the shared data folder.
    """
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError("the paper's released subsets are not available: set "
                            "REFUSAL_ATLAS_SHARED_DATA or pass the folder holding paper/sources")
        path = shared
    p = Path(path).expanduser()
    for cand in (p, p / "sources", p / "paper" / "sources"):
        if (cand / PAPER_BENIGN_FILE).is_file():
            return cand
    raise UserError(f"no paper sources under {p} (looked for {PAPER_BENIGN_FILE} in {p}, "
                    f"{p / 'sources'} and {p / 'paper' / 'sources'})")


def load_paper_source_file(path: str | Path, *, split: str | None = None) -> list[Prompt]:
    """One of the paper's ``sources/<split>.json`` files.

    Records ``{prompt, prompt_harm_label, source: {dataset, idx, ...}}``. Ids are
    ``paper/<file stem>/<dataset>-<idx>``. ``Prompt.split`` is ``split`` if given, else the
    file stem for harmful prompts and ``benign_general`` for ``_BC_source.json``.
    """
    path = Path(path).expanduser()
    rows = read_records(path)
    return _paper_prompts(rows, path, split=split)


def _paper_prompts(rows: list[dict[str, Any]], path: Path, *, split: str | None) -> list[Prompt]:
    stem = path.stem
    out: list[Prompt] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        src = row.get("source")
        if not isinstance(src, dict) or "dataset" not in src or "idx" not in src:
            raise UserError(f"{path} record {i} is not a paper sources record (needs "
                            "source.dataset and source.idx)")
        label = str(row.get("prompt_harm_label", "")).strip().lower()
        if label not in ("harmful", "unharmful"):
            raise UserError(f"{path} record {i}: prompt_harm_label {row.get('prompt_harm_label')!r}"
                            " is not harmful/unharmful")
        harmful = label == "harmful"
        pid = f"paper/{stem}/{src['dataset']}-{src['idx']}"
        if pid in seen:
            raise UserError(f"{path}: two records share source {src['dataset']} idx {src['idx']}")
        seen.add(pid)
        if split is not None:
            name = split
        elif harmful:
            name = stem
        else:
            name = BENIGN_GENERAL if path.name == PAPER_BENIGN_FILE else stem
        out.append(Prompt(
            id=pid,
            text=_text(row.get("prompt"), where=f"{path} record {i}"),
            split=name,
            harmful=harmful,
            source=f"paper/{src['dataset']}",
            meta={**{k: _clean(v) for k, v in src.items()}, "prompt_harm_label": label,
                  "paper_file": stem},
        ))
    return out


def load_paper_sources(path: str | Path | None = None) -> dict[str, list[Prompt]]:
    """All of the paper's ``sources/*.json``: file stem -> prompts (``_BC_source`` included)."""
    d = paper_sources_dir(path)
    files = sorted(d.glob("*.json"))
    return {f.stem: load_paper_source_file(f) for f in files}


def load_paper_controlled_test_set(path: str | Path | None = None) -> dict[str, list[Prompt]]:
    """The paper's controlled test set: ``{"HR", "HC", "BR", "BC"}`` -> 50 prompts each.

    ``path`` is the ``controlled_test_set`` folder (or a folder holding ``paper/``); default:
    the shared data. Ids are ``paper/controlled_test_set/<label>/<row>``, ``Prompt.split``
    is ``controlled_test_set``; ``meta`` has ``label``, the paper model's ``response``,
    ``is_refusal`` and the WildGuard fields when present.
    """
    d = _paper_subdir(path, "controlled_test_set", PAPER_CONTROLLED_FILES["HR"])
    out: dict[str, list[Prompt]] = {}
    for label, name in PAPER_CONTROLLED_FILES.items():
        file = d / name
        rows = read_records(file)
        prompts = []
        for i, row in enumerate(rows):
            meta = {k: _clean(v) for k, v in row.items() if k != "prompt"}
            meta.update({"label": label, "row": i})
            prompts.append(Prompt(
                id=f"paper/controlled_test_set/{label}/{i}",
                text=_text(row.get("prompt"), where=f"{file} record {i}"),
                split="controlled_test_set",
                harmful=label.startswith("H"),
                source="paper/controlled_test_set",
                meta=meta,
            ))
        out[label] = prompts
    return out


def _paper_subdir(path: str | Path | None, name: str, marker: str) -> Path:
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError(f"no shared data folder: pass the paper's {name} folder")
        path = shared
    p = Path(path).expanduser()
    for cand in (p, p / name, p / "paper" / name):
        if (cand / marker).exists():
            return cand
    raise UserError(f"no paper {name} under {p} (looked for {marker})")


@dataclass(frozen=True)
class PaperTrainingPool:
    """One released steering training pool: ``H.json`` + its benign pool, as paper-suite prompts."""

    model: str
    split: str
    harmful: list[Prompt]
    benign: list[Prompt]
    manifest: dict[str, Any] = field(default_factory=dict)
    benign_from: str = ""
    """Where ``benign`` came from: ``B.json`` of this split or of another split of the model."""


def paper_training_pool_models(path: str | Path | None = None) -> list[str]:
    """Model names with released training pools (``gemma``, ``llama``, ``qwen``, ``qwen7``)."""
    d = _training_pools_dir(path)
    return sorted(p.name[: -len("_per_split")] for p in d.glob("*_per_split") if p.is_dir())


def _training_pools_dir(path: str | Path | None) -> Path:
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError("no shared data folder: pass the paper's training_pools folder")
        path = shared
    p = Path(path).expanduser()
    for cand in (p, p / "training_pools", p / "paper" / "training_pools"):
        if cand.is_dir() and any(d.is_dir() for d in cand.glob("*_per_split")):
            return cand
    raise UserError(f"no paper training pools under {p} (looked for <model>_per_split folders)")


def load_paper_training_pool(path: str | Path | None, model: str, split: str, *,
                             sources: str | Path | dict[str, list[Prompt]] | None = None,
                             ) -> PaperTrainingPool:
    """The paper's per-split training pool for ``model`` (``training_pools/<model>_per_split``).

    Returns the prompts as the ``paper`` suite builds them (same ids, texts and splits),
    matched through ``source.dataset``/``idx`` where records carry them, else by text.
    ``B.json`` exists only for some splits; per the upstream recipe every split's benign
    pool is the first ``n_b`` prompts of the model's shared 32-prompt pool, so a split
    without ``B.json`` gets that slice of a sibling split's ``B.json``.
    ``sources`` (a folder, or :func:`load_paper_sources`' result to save reloading it)
    defaults to the ``sources`` folder beside ``training_pools``.
    """
    root = _training_pools_dir(path)
    model_dir = root / (model if model.endswith("_per_split") else f"{model}_per_split")
    if not model_dir.is_dir():
        models = sorted(p.name[: -len("_per_split")] for p in root.glob("*_per_split"))
        raise UserError(f"no training pools for model {model!r} under {root}; have {models}")
    split_dir = model_dir / split
    if not (split_dir / "H.json").is_file():
        have = sorted(p.name for p in model_dir.iterdir() if (p / "H.json").is_file())
        raise UserError(f"no training pool for split {split!r} of {model!r}; have {have}")
    if isinstance(sources, dict):
        src = sources
    else:
        src = load_paper_sources(sources if sources is not None else root.parent)
    if split not in src:
        raise UserError(f"split {split!r} is not among the paper sources {sorted(src)}")
    manifest: dict[str, Any] = {}
    if (split_dir / "manifest.json").is_file():
        manifest = json.loads((split_dir / "manifest.json").read_text(encoding="utf-8"))
    harmful = _match_pool(read_records(split_dir / "H.json"), src[split], split_dir / "H.json")
    n_b = manifest.get("n_b")
    benign_from = ""
    b_file = split_dir / "B.json"
    if not b_file.is_file():
        siblings = sorted((p for p in model_dir.glob("*/B.json")),
                          key=lambda p: -len(read_records(p)))
        b_file = siblings[0] if siblings else None  # type: ignore[assignment]
    benign: list[Prompt] = []
    if b_file is not None:
        benign = _match_pool(read_records(b_file), src["_BC_source"], b_file)
        if isinstance(n_b, int):
            if n_b > len(benign):
                raise UserError(f"{b_file} has {len(benign)} prompts, fewer than n_b={n_b}")
            benign = benign[:n_b]
        benign_from = str(b_file.relative_to(model_dir))
    return PaperTrainingPool(model=model_dir.name[: -len("_per_split")], split=split,
                             harmful=harmful, benign=benign, manifest=manifest,
                             benign_from=benign_from)


def _match_pool(rows: list[dict[str, Any]], prompts: list[Prompt], file: Path) -> list[Prompt]:
    by_key = {(str(p.meta.get("dataset")), str(p.meta.get("idx"))): p for p in prompts}
    by_text = {p.text: p for p in prompts}
    out = []
    for i, row in enumerate(rows):
        src = row.get("source")
        p = None
        if isinstance(src, dict) and "dataset" in src and "idx" in src:
            p = by_key.get((str(src["dataset"]), str(src["idx"])))
        if p is None:
            p = by_text.get(row.get("prompt"))
        if p is None or p.text != row.get("prompt"):
            raise UserError(f"{file} record {i} does not match any prompt of the paper sources")
        out.append(p)
    return out


# --------------------------------------------------------------------------- user files


def _column(keys: Iterable[str], candidates: Sequence[str]) -> str | None:
    lower = {}
    for k in keys:
        lower.setdefault(str(k).strip().lower(), k)
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


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
        return _paper_prompts(rows, path, split=split)
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys:
                keys.append(k)
    text_col = _column(keys, TEXT_COLUMNS)
    if text_col is None:
        raise UserError(f"{path} has no prompt column: expected one of {list(TEXT_COLUMNS)}, "
                        f"found {keys}")
    split_col = _column(keys, SPLIT_COLUMNS)
    harm_col = _column(keys, HARMFUL_COLUMNS)
    id_col = _column(keys, ID_COLUMNS)
    prefix = id_prefix if id_prefix is not None else f"user/{path.stem}"
    out: list[Prompt] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"{path} row {i + 1}"
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{where} has no text in column {text_col!r}")
        category = row.get(split_col) if split_col else None
        category = None if _blank(category) else str(category).strip()
        if harmful is not None:
            is_harmful = harmful
        elif harm_col is not None and not _blank(row.get(harm_col)):
            is_harmful = _as_bool(row[harm_col], where=f"{where} column {harm_col!r}")
        else:
            is_harmful = (category or "").lower() != "benign"
        if split is not None:
            name = split
        elif is_harmful:
            name = category or path.stem
        else:
            name = "benign"
        rid = row.get(id_col) if id_col else None
        rid = str(_int_id(rid)) if not _blank(rid) else str(i)
        pid = f"{prefix}/{rid}"
        if pid in seen:
            raise UserError(f"{where}: id {rid!r} is used twice in the file")
        seen.add(pid)
        meta = {str(k): _clean(v) for k, v in row.items() if k not in (text_col, id_col)}
        meta["row"] = i
        out.append(Prompt(id=pid, text=text, split=name, harmful=is_harmful, source="user",
                          meta=meta))
    return out


def with_split(prompts: Iterable[Prompt], split: str) -> list[Prompt]:
    """Copies of ``prompts`` with ``Prompt.split`` set to ``split``."""
    return [p if p.split == split else replace(p, split=split) for p in prompts]
