"""WildGuardTest (``allenai/wildguardmix``, config ``wildguardtest``): its non-adversarial prompts."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..prompts import Prompt
from ..records import as_bool, clean
from ..splits import BENIGN_GENERAL, WILDGUARD_SPLIT
from .base import SourceRow, SourceSpec, load_source

WILDGUARD_REPO = "allenai/wildguardmix"
WILDGUARD_FILES = ("test/wildguard_test.parquet", "wildguard_test.parquet")
"""Local names tried in a folder: the hub repo's layout first."""

WILDGUARD = SourceSpec(
    what="WildGuardTest", source="wildguardtest", repo=WILDGUARD_REPO, config="wildguardtest",
    hub_split="test", files=WILDGUARD_FILES,
    local_hint=f"path= a copy of {WILDGUARD_FILES[0]} or a folder holding it",
    columns=("prompt", "adversarial", "prompt_harm_label"), gated=True)


def _harm_filter(harm: str | None) -> str | None:
    if harm is None:
        return None
    key = harm.strip().lower()
    if key in ("benign", "safe"):
        key = "unharmful"
    if key not in ("harmful", "unharmful"):
        raise UserError(f"harm must be 'harmful', 'unharmful' or None, not {harm!r}")
    return key


def load_wildguardtest(path: str | Path | None = None, *,
                       harm: str | None = None) -> list[Prompt]:
    """Non-adversarial WildGuardTest prompts (``allenai/wildguardmix``, config ``wildguardtest``).

    ``harm="harmful"`` gives split ``WildGuard_all``, ``harm="unharmful"`` the benign pool
    ``benign_general``, ``None`` both. Rows without a ``prompt_harm_label`` are dropped.
    Ids are ``wildguardtest/<row>`` (0-based row of the test split); ``meta`` holds
    ``row``, ``vanilla_idx`` (position among the non-adversarial rows), ``subcategory``,
    ``prompt_harm_label`` and the annotator agreement when present.

    Args:
        path: ``None`` for the hub, else ``wildguard_test.parquet`` or a folder holding it.
        harm: keep only ``"harmful"`` or ``"unharmful"`` prompts (``None``: both).

    Example:
        >>> harmful = load_wildguardtest("data/wildguardmix", harm="harmful")  # doctest: +SKIP
    """
    harm = _harm_filter(harm)
    vanilla = count()

    def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow | None:
        if as_bool(row["adversarial"], where=f"{WILDGUARD.what} row {i} column 'adversarial'"):
            return None
        vanilla_idx = next(vanilla)
        label = clean(row["prompt_harm_label"])
        if label not in ("harmful", "unharmful") or (harm is not None and label != harm):
            return None
        meta = {"row": i, "vanilla_idx": vanilla_idx, "prompt_harm_label": label,
                "subcategory": clean(row.get("subcategory"))}
        if "prompt_harm_agreement" in row:
            meta["prompt_harm_agreement"] = clean(row["prompt_harm_agreement"])
        return SourceRow(id=f"wildguardtest/{i}", text=row["prompt"],
                         split=WILDGUARD_SPLIT if label == "harmful" else BENIGN_GENERAL,
                         harmful=label == "harmful", meta=meta)

    return load_source(WILDGUARD, path, rule)


def wildguardtest_pools(path: str | Path | None = None) -> tuple[list[Prompt], list[Prompt]]:
    """(harmful, benign) non-adversarial WildGuardTest prompts from one load."""
    prompts = load_wildguardtest(path)
    return [p for p in prompts if p.harmful], [p for p in prompts if not p.harmful]
