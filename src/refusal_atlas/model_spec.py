"""What a model name means, decided without loading anything or touching the network.

A name is a packaged model, a ``.gguf`` file, a transformers folder or a hub id. A name
meant as a local path that does not exist must say "no such folder" at once: sent to the
hub it would cost a network round trip and end in a hub error that hides the typo.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Collection

from .errors import UserError

__all__ = ["model_kind", "not_local"]

# A Hugging Face repository id: optional owner, then a name of word characters, '.' and '-'.
_HUB_ID = re.compile(r"(?:\w(?:[\w.-]*\w)?/)?\w(?:[\w.-]{0,94}\w)?")


def model_kind(spec: str, packaged: Collection[str]) -> str:
    """``packaged``, ``gguf``, ``folder`` or ``hub``: what kind of model ``spec`` names.

    Args:
        spec: the model name the user gave.
        packaged: the packaged model names.

    Raises:
        UserError: when it is none of them (no file or network access beyond ``stat``).
    """
    if spec in packaged:
        return "packaged"
    if not spec.strip():
        raise UserError("the model name is empty; pass a packaged name, a folder, a .gguf file "
                        "or a hub id")
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"GGUF file not found: {path}")
        return "gguf"
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UserError(f"{path} is a folder but has no config.json: not a transformers model")
        return "folder"
    if path.exists():
        raise UserError(f"{spec} is a file but not a .gguf model; pass a folder, a .gguf file "
                        "or a hub id")
    if _looks_like_path(spec):
        raise UserError(f"no such folder: {path} (a name that starts with ./, / or ~, or lies "
                        "under an existing folder, is a local path; hub ids look like org/name)")
    if not _HUB_ID.fullmatch(spec) or "--" in spec or ".." in spec:
        raise UserError(f"model {spec!r} is not valid: {not_local(spec, packaged)}, and not a "
                        "Hugging Face hub id (org/name)")
    return "hub"


def _looks_like_path(spec: str) -> bool:
    """A name meant as a local path: rooted, relative with ./ or ~, deeper than org/name, or
    whose first part exists here. Such a name is never sent to the hub."""
    parts = re.split("[/" + re.escape(os.sep) + "]", spec)
    if len(parts) < 2:
        return False
    return (spec.startswith((".", "/", "~", os.sep)) or len(parts) > 2
            or Path(parts[0]).expanduser().exists())


def not_local(spec: str, packaged: Collection[str]) -> str:
    """The start of every "not found" sentence, with a packaged name it may be a typo of."""
    close = difflib.get_close_matches(spec, list(packaged), n=1)
    known = f"did you mean {close[0]}?" if close else "known: " + ", ".join(packaged)
    return f"it is not a packaged model ({known}), not a local folder or .gguf file"
