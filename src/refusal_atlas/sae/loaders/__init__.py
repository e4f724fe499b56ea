"""Read (and write) SAEs in the formats refusal-atlas meets, as :class:`~..models.SAE`.

One module per format: :mod:`.gemma_scope` (``params.npz``), :mod:`.saelens` (SAELens
folders and pretrained releases; :func:`save_saelens_dir` writes one),
:mod:`.dictionary_learning` (``ae.pt`` + ``config.json``); :mod:`.hub` downloads.
:func:`load_sae` picks the format from a spec, in this one place.

Every user-caused problem (missing file, wrong shapes, unknown format, hub unreachable)
raises :class:`~refusal_atlas.errors.UserError` with one sentence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..models import SAE
from .dictionary_learning import DL_WEIGHTS, load_dictionary_learning
from .gemma_scope import GEMMA_SCOPE_FILE, load_gemma_scope
from .hub import hub_download, looks_like_hub_path
from .saelens import (
    SAELENS_CFG,
    SAELENS_WEIGHTS,
    load_saelens_dir,
    load_saelens_pretrained,
    save_saelens_dir,
)


def load_sae(spec: str | Path, **kw: Any) -> SAE:
    """Load an SAE from any supported source, chosen from ``spec``:

    * ``saelens:RELEASE/SAE_ID`` -> :func:`load_saelens_pretrained` (split at the first ``/``)
    * ``gemma-scope:PATH`` or a ``.npz`` file / folder with ``params.npz`` or a hub path
      of a ``gemma-scope`` repo -> :func:`load_gemma_scope`
    * a folder with ``cfg.json`` (or that file) -> :func:`load_saelens_dir`
    * ``dictionary-learning:PATH``, a folder with ``ae.pt`` (or that file), or a hub path
      with ``resid_post_layer_L`` / ``trainer_N`` -> :func:`load_dictionary_learning`

    Keyword arguments go to the chosen loader (all take ``dtype`` and ``device``).

    Example:
        >>> sae = load_sae("gemma-scope:google/gemma-scope-9b-it-res/layer_20/width_16k/"
        ...                "average_l0_14", device="cuda")  # doctest: +SKIP
        >>> sae.hook_layer  # doctest: +SKIP
        21
    """
    text = str(spec).strip()
    if not text:
        raise UserError("no SAE given")
    if text.startswith("saelens:"):
        rest = text.removeprefix("saelens:").strip("/")
        if "/" not in rest:
            raise UserError(f"{text!r}: expected saelens:RELEASE/SAE_ID")
        release, sae_id = rest.split("/", 1)
        return load_saelens_pretrained(release, sae_id, **kw)
    if text.startswith("gemma-scope:"):
        return load_gemma_scope(text, **kw)
    if text.startswith("dictionary-learning:"):
        return load_dictionary_learning(text, **kw)

    p = Path(text).expanduser()
    if p.is_file():
        if p.suffix == ".npz":
            return load_gemma_scope(p, **kw)
        if p.name in (SAELENS_CFG, SAELENS_WEIGHTS):
            return load_saelens_dir(p.parent, **kw)
        if p.suffix in (".pt", ".pth"):
            return load_dictionary_learning(p, **kw)
        raise UserError(
            f"unknown SAE file format: {p} (expected params.npz, a SAELens folder or ae.pt)"
        )
    if p.is_dir():
        if (p / SAELENS_CFG).is_file():
            return load_saelens_dir(p, **kw)
        if (p / DL_WEIGHTS).is_file():
            return load_dictionary_learning(p, **kw)
        if (p / GEMMA_SCOPE_FILE).is_file():
            return load_gemma_scope(p, **kw)
        raise UserError(
            f"{p} holds no SAE refusal-atlas recognises ({SAELENS_CFG}, {DL_WEIGHTS} or "
            f"{GEMMA_SCOPE_FILE})"
        )
    if looks_like_hub_path(text):
        repo_name = text.strip("/").split("/")[1]
        if "gemma-scope" in repo_name:
            return load_gemma_scope(text, **kw)
        if re.search(r"(^|/)(resid_(post|pre)_layer_\d+|trainer_\d+)(/|$)", text):
            return load_dictionary_learning(text, **kw)
        raise UserError(
            f"{text!r} is not a local file and not a hub path refusal-atlas knows how to read; "
            "prefix it with gemma-scope:, dictionary-learning: or saelens:"
        )
    raise UserError(f"SAE not found: {text} (no such file or folder)")


__all__ = [
    "hub_download",
    "load_dictionary_learning",
    "load_gemma_scope",
    "load_sae",
    "load_saelens_dir",
    "load_saelens_pretrained",
    "save_saelens_dir",
]
