"""Reading prompt records: files, the Hugging Face hub, and the values in their columns.

Every dataset loader reads its rows through here, so a bad file, an unreachable or
gated hub dataset, or an unreadable value is always one :class:`~..errors.UserError`
that names the file and row and says what to do.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError

_TRUE = {"1", "1.0", "true", "yes", "y", "harmful", "unsafe", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "unharmful", "harmless", "benign", "safe", "f"}


# --------------------------------------------------------------------------- reading files


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON (list of objects), JSONL, CSV/TSV or Parquet file, as dicts.

    Any problem with the file is one :class:`UserError`.

    Args:
        path: the file; the suffix picks the format (``.json``, ``.jsonl``/``.ndjson``,
            ``.csv``/``.tsv``, ``.parquet``).

    Example:
        >>> rows = read_records("my_prompts.jsonl")  # doctest: +SKIP
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
    # pyarrow is heavy and only WildGuardTest's hub layout uses Parquet.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path} is not a readable Parquet file ({exc})") from None


def resolve_local(path: str | Path, candidates: Sequence[str], what: str) -> Path:
    """``path`` itself if it is a file, else the first of ``candidates`` inside it.

    Args:
        path: a file, or a folder holding one of ``candidates``.
        candidates: file names relative to the folder, tried in order.
        what: the dataset's name for the error message.
    """
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


def hub_rows(repo_id: str, config: str | None, split: str, *, what: str, local_hint: str,
              data_files: str | None = None) -> list[dict[str, Any]]:
    """Rows of a hub dataset via ``datasets.load_dataset``; failures become one UserError.

    Args:
        repo_id: hub dataset id; config: its config (or ``None``); split: its split.
        what: the dataset's name for messages; local_hint: how to pass a local copy instead.
        data_files: one file of the repo to load, where the repo holds several variants.
    """
    try:
        # datasets is slow to import and only needed when a dataset comes from the hub.
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


def blank(value: Any) -> bool:
    """True for None, NaN and whitespace-only strings: a cell with nothing in it."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def clean(value: Any) -> Any:
    """JSON-friendly scalar: NaN/None -> None, numpy scalars -> Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, dict)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def as_bool(value: Any, *, where: str) -> bool:
    """A harmful/benign cell (true/false, 1/0, yes/no, harmful/unharmful, unsafe/safe) as bool.

    Args:
        value: the cell.
        where: file/row/column for the error message.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not blank(value) and value in (0, 1):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise UserError(f"{where}: cannot read {value!r} as harmful/benign (use true/false, 1/0, "
                    "harmful/unharmful or unsafe/safe)")


def require_columns(rows: list[dict[str, Any]], needed: Iterable[str], what: str) -> None:
    """Raise a UserError unless there are rows and the first has every column in ``needed``."""
    if not rows:
        raise UserError(f"{what}: no rows")
    have = set(rows[0])
    missing = [c for c in needed if c not in have]
    if missing:
        raise UserError(f"{what}: missing column(s) {missing}; found {sorted(have)}")


def prompt_text(value: Any, *, where: str) -> str:
    """A non-empty prompt string; a list (SORRY-Bench's ``turns``) gives its first item."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: empty or non-text prompt")
    return value


def int_id(value: Any) -> Any:
    """An id cell as int where it is an integer (``"7"``, ``7.0``), else unchanged."""
    value = clean(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def pick_column(keys: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` among ``keys``, matched case-insensitively (``None`` if none).

    Returns the key as spelt in the data, so it can index the rows.
    """
    lower = {}
    for k in keys:
        lower.setdefault(str(k).strip().lower(), k)
    for c in candidates:
        if c in lower:
            return lower[c]
    return None

