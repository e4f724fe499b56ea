"""Small, atomic artifact I/O for run folders.

Every stage writes through these helpers so that an interrupted process leaves
either the old file or the new one, never half a file: a resumed run can trust
whatever it finds.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import UserError

STAGE_MARKERS = ("_started.json", "_done.json")
"""Files that mark a run folder's stage folder; they let an unreadable artifact's error
name the ``--force`` that rewrites it, without this module knowing the pipeline."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; artifacts are meant to be shared like any output
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike, expect: type | None = None) -> Any:
    """A JSON file's content; with ``expect`` (e.g. ``dict``), content of another type is
    unreadable too (a file overwritten with other valid JSON)."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise unreadable(path, f"not valid JSON: line {exc.lineno}, column {exc.colno}: "
                               f"{exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise unreadable(path, f"not UTF-8 text at byte {exc.start}") from None
    except OSError as exc:
        raise unreadable(path, exc.strerror or type(exc).__name__) from None
    if expect is not None and not isinstance(data, expect):
        raise unreadable(path, f"a JSON {type(data).__name__}, not a {expect.__name__}")
    return data


def write_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> Path:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata=metadata)
    return Path(path)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    return read_tensor_file(path)[0]


def read_tensor_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and its metadata; an unreadable file is one line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        # a truncated or overwritten file; safetensors' own message is one technical line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise unreadable(path, f"not a valid safetensors file: {reason}") from None


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file's content (hex), read in blocks so large weights fit."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unreadable(path: str | os.PathLike, reason: str) -> UserError:
    """The one error for an artifact that exists but cannot be read, with the way to
    rewrite it: the ``--force`` of the stage whose folder holds it, when there is one."""
    path = Path(path)
    stage = _stage_of(path)
    fix = (f"re-run the stage that wrote it with `--force {stage}`" if stage else
           "if a stage of a run wrote it, re-run that stage with `--force STAGE`")
    return UserError(f"{path} is unreadable ({reason}); {fix}")


def _stage_of(path: Path) -> str | None:
    """The stage folder holding ``path`` (the nearest parent with a stage marker)."""
    for folder in list(path.parents)[:3]:
        if any((folder / marker).is_file() for marker in STAGE_MARKERS):
            return folder.name
    return None


def append_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """Append rows and fsync, so a kill right after returns loses nothing written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file, ignoring a torn last line left by a killed writer (which may end
    inside a multi-byte character, so lines are decoded one by one)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        raise unreadable(path, exc.strerror or type(exc).__name__) from None
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i == len(lines) - 1:
                break  # partial final line from an interrupted append
            raise unreadable(path, f"line {i + 1} is not valid JSON") from None
    return rows


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
