"""What a finished stage vouches for: its output files' sizes and hashes in ``_done.json``.

A stage's artifact that changed after it finished (truncated, edited, replaced) is not
trusted: the plan refuses to build on it and names the ``--force`` that redoes it. A file
whose size and modification time are unchanged is not hashed again, so checking a
finished run stays cheap. Markers written before outputs were recorded vouch for nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from ..artifacts import file_digest


def record_outputs(folder: Path, names: Iterable[str]) -> dict[str, dict]:
    """``{name: {size, mtime_ns, sha256}}`` for each of ``names`` that exists in ``folder``."""
    out = {}
    for name in names:
        path = folder / name
        if path.is_file():
            st = path.stat()
            out[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                         "sha256": file_digest(path)}
    return out


def changed_outputs(folder: Path, recorded: Mapping[str, Mapping]) -> list[str]:
    """The recorded outputs that are missing or whose content is no longer what was written."""
    changed = []
    for name, rec in recorded.items():
        path = folder / name
        if not path.is_file():
            changed.append(name)
            continue
        st = path.stat()
        if st.st_size != rec.get("size"):
            changed.append(name)
        elif st.st_mtime_ns != rec.get("mtime_ns") and file_digest(path) != rec.get("sha256"):
            changed.append(name)
    return changed
