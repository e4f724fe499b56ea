"""The model cache's converted folders: their marker file and the checksum of their weights.

A packaged model or a ``.gguf`` file is converted once to a safetensors folder that every
later run loads. A damaged byte there silently changes every response (a damaged header
can even make transformers initialise a tensor at random), so a checksum is recorded when
the folder is written and checked on every load. The check must cost little next to the
load itself, so for each ``*.safetensors`` file it compares:

* the size (truncation),
* the sha256 of the header (tensor names, shapes and offsets),
* the sha256 of 16 evenly spaced 64 KiB blocks (a sample of the data),
* and the full sha256, but only when the file's mtime changed since it was last verified:
  any write through the file system changes the mtime, so an edited file is always caught,
  while an untouched one costs milliseconds instead of a full read (~2 s for 2 GB).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from .artifacts import file_digest, write_json
from .errors import UserError

__all__ = ["MARKER", "SAMPLE_BLOCK", "SAMPLE_COUNT", "WeightsDamaged", "check", "read_marker",
           "record", "verify", "write_marker"]

MARKER = "refusal_atlas_model.json"
"""Written last into a converted folder: what it was converted from, and its checksum."""

SAMPLE_COUNT = 16
SAMPLE_BLOCK = 64 * 1024


def read_marker(folder: Path) -> dict | None:
    """The marker of a finished conversion; None (convert again) when absent or unreadable."""
    try:
        meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def write_marker(folder: Path, meta: dict) -> None:
    """Write the marker of a just-converted ``folder``, with the checksum of its weights."""
    write_json(folder / MARKER, {**meta, "weights": record(folder)})


def check(folder: Path, meta: dict) -> None:
    """Verify a converted folder's weights against the checksum in its marker ``meta``.

    Raises:
        UserError: one line naming the folder to delete so that it is rebuilt.
    """
    recorded = meta.get("weights")
    if recorded is None:
        # Trust on first use: folders converted before checksums were recorded get one
        # now, from the weights as they are, and are checked from then on.
        meta["weights"] = record(folder)
        _save(folder, meta)
        return
    try:
        rehashed = verify(folder, recorded)
    except WeightsDamaged as exc:
        raise UserError(f"the cached converted model in {folder} is damaged ({exc}); delete "
                        f"that folder (rm -rf {folder}) and run again to rebuild it") from None
    if rehashed:
        _save(folder, meta)


def _save(folder: Path, meta: dict) -> None:
    try:
        write_json(folder / MARKER, meta)
    except OSError:
        pass  # a read-only shared cache: the check still runs, it just stays the full one


class WeightsDamaged(Exception):
    """A weights file differs from its recorded checksum (the message says how)."""


def record(folder: Path) -> dict[str, dict[str, Any]]:
    """The checksum of every ``*.safetensors`` file in ``folder``, to store beside it."""
    return {path.name: {**_cheap(path), "sha256": file_digest(path),
                        "mtime_ns": path.stat().st_mtime_ns}
            for path in sorted(folder.glob("*.safetensors"))}


def verify(folder: Path, recorded: dict[str, dict[str, Any]]) -> bool:
    """Check ``folder`` against ``recorded`` (from :func:`record`).

    Returns:
        True when a file was fully re-hashed, matched, and its new mtime was put into
        ``recorded`` (the caller should save it so the next load is cheap again).

    Raises:
        WeightsDamaged: the first difference found.
    """
    present = sorted(p.name for p in folder.glob("*.safetensors"))
    if present != sorted(recorded):
        raise WeightsDamaged(f"the weight files are {present or 'missing'}, not "
                             f"{sorted(recorded)}")
    changed = False
    for name, expected in sorted(recorded.items()):
        path = folder / name
        cheap = _cheap(path)
        for key, what in (("size", "size"), ("header_sha256", "header"),
                          ("sample_sha256", "sampled content")):
            if cheap[key] != expected.get(key):
                raise WeightsDamaged(f"{name}: its {what} differs from the recorded checksum")
        mtime = path.stat().st_mtime_ns
        if mtime != expected.get("mtime_ns"):
            if file_digest(path) != expected.get("sha256"):
                raise WeightsDamaged(f"{name}: its content differs from the recorded checksum")
            expected["mtime_ns"] = mtime
            changed = True
    return changed


def _cheap(path: Path) -> dict[str, Any]:
    """Size, header hash and sampled-content hash: a few hundred KiB read at most."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        header_len = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else 0
        # a damaged length must not make us read gigabytes: the header ends inside the file
        header = prefix + fh.read(min(header_len, max(size - 8, 0)))
        sample = hashlib.sha256()
        step = max(size // SAMPLE_COUNT, 1)
        for offset in range(0, size, step)[:SAMPLE_COUNT]:
            fh.seek(offset)
            sample.update(fh.read(SAMPLE_BLOCK))
    return {"size": size, "header_sha256": hashlib.sha256(header).hexdigest(),
            "sample_sha256": sample.hexdigest()}
