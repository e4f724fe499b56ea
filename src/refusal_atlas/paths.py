"""Where refusal-atlas keeps things outside a run folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """User cache for converted models and activations (``REFUSAL_ATLAS_CACHE`` overrides)."""
    env = os.environ.get("REFUSAL_ATLAS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "refusal-atlas"


def _cache_origin() -> str:
    """Which setting chose the cache folder, for error messages that say what to change."""
    if os.environ.get("REFUSAL_ATLAS_CACHE"):
        return "REFUSAL_ATLAS_CACHE"
    if os.environ.get("XDG_CACHE_HOME"):
        return "XDG_CACHE_HOME"
    return "the home folder"


def writable_cache_dir() -> Path:
    """:func:`cache_dir`, created and checked writable: every writer of the cache calls this.

    Raises:
        UserError: one line naming the variable and the path when the folder cannot be
            created (it lies under a regular file) or written to.
    """
    return writable_dir(cache_dir(), f"the refusal-atlas cache (set by {_cache_origin()})",
                        "set REFUSAL_ATLAS_CACHE to a writable folder")


def writable_dir(path: Path, what: str, fix: str) -> Path:
    """Create ``path`` (and its parents) and check that a file can be written in it.

    Args:
        path: the folder.
        what: what the folder is, for the error ("the activation cache").
        fix: what the user should do, for the error.

    Raises:
        UserError: when it cannot be created or written to.
    """
    blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{what} {path} cannot be created: {blocker} is a regular file, not a "
                        f"folder; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be created ({exc.strerror or exc}); {fix}") from None
    if not _can_write(path):
        raise UserError(f"{what} {path} is not writable; {fix}")
    return path


def _can_write(folder: Path) -> bool:
    # A real write, not os.access: root passes every permission check os.access makes,
    # and read-only mounts are only found by trying.
    try:
        fd, name = tempfile.mkstemp(prefix=".write-check-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def shared_data_dir() -> Path | None:
    """The real prompt datasets (``REFUSAL_ATLAS_SHARED_DATA`` or ``../shared/data`` beside the repo)."""
    env = os.environ.get("REFUSAL_ATLAS_SHARED_DATA")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def builtin_data_dir() -> Path:
    """The built-in demo prompts, shipped inside the package (``data/builtin/``)."""
    return Path(__file__).resolve().parent / "data" / "builtin"
