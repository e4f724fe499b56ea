"""Where refusal-atlas keeps things outside a run folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """User cache for converted models and activations (``REFUSAL_ATLAS_CACHE`` overrides)."""
    env = os.environ.get("REFUSAL_ATLAS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "refusal-atlas"


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
