"""The prompt data model every stage shares.

A *suite* is what a run studies: named non-compliant splits (harmful or otherwise
refusal-worthy prompts, one refusal direction each) and named benign pools, with
each split pointing at the benign pool it is contrasted with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UserError
from .splits import PAPER_SPLITS


@dataclass(frozen=True)
class Prompt:
    """One prompt of a suite, with where it came from.

    Example:
        >>> p = Prompt("user/mine/0", "How do I pick a lock?", "crime", harmful=True)
    """

    id: str
    """Stable, unique within a suite (e.g. ``paper/CocoNot_Safety/0042``)."""
    text: str
    split: str
    """Split name for non-compliant prompts, benign-pool name for benign ones."""
    harmful: bool
    """True for the non-compliant side (HR/HC), False for benign (BR/BC)."""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "split": self.split,
                "harmful": self.harmful, "source": self.source, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Prompt":
        return cls(id=row["id"], text=row["text"], split=row["split"], harmful=bool(row["harmful"]),
                   source=row.get("source", ""), meta=dict(row.get("meta") or {}))


@dataclass
class PromptSuite:
    """Named non-compliant splits and benign pools, each split paired with one pool.

    Build one with :func:`assemble_suite` (or ``refusal_atlas.data.load_suite``); the
    constructor checks the pairing and that no id names two different prompts.
    """

    name: str
    splits: dict[str, list[Prompt]]
    benign: dict[str, list[Prompt]]
    benign_for: dict[str, str]
    """split name -> name of the benign pool its direction contrasts against."""

    def __post_init__(self) -> None:
        for split, pool in self.benign_for.items():
            if split not in self.splits:
                raise ValueError(f"benign_for names unknown split {split!r}")
            if pool not in self.benign:
                raise ValueError(f"split {split!r} points at unknown benign pool {pool!r}")
        missing = set(self.splits) - set(self.benign_for)
        if missing:
            raise ValueError(f"splits without a benign pool: {sorted(missing)}")
        seen: dict[str, Prompt] = {}
        for p in self.all_prompts():
            if p.id in seen and seen[p.id] != p:
                raise ValueError(f"prompt id {p.id!r} is used by two different prompts")
            seen[p.id] = p

    def all_prompts(self) -> list[Prompt]:
        out: list[Prompt] = []
        for group in (self.splits, self.benign):
            for prompts in group.values():
                out.extend(prompts)
        return out

    def by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.all_prompts()}

    def subset(self, splits: Iterable[str]) -> "PromptSuite":
        wanted = list(splits)
        unknown = [s for s in wanted if s not in self.splits]
        if unknown:
            raise UserError(f"unknown split(s) {unknown}; this suite has {sorted(self.splits)}")
        pools = {self.benign_for[s] for s in wanted}
        return PromptSuite(
            name=self.name,
            splits={s: self.splits[s] for s in wanted},
            benign={b: self.benign[b] for b in pools},
            benign_for={s: self.benign_for[s] for s in wanted},
        )

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for p in sorted(self.all_prompts(), key=lambda p: p.id):
            h.update(f"{p.id}\x00{p.split}\x00{int(p.harmful)}\x00{p.text}\x01".encode())
        for split in sorted(self.benign_for):
            h.update(f"{split}->{self.benign_for[split]}\x02".encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "splits": {s: len(v) for s, v in self.splits.items()},
            "benign": {b: len(v) for b, v in self.benign.items()},
            "benign_for": dict(self.benign_for),
        }


def with_split(prompts: Iterable[Prompt], split: str) -> list[Prompt]:
    """Copies of ``prompts`` with ``Prompt.split`` set to ``split``."""
    return [p if p.split == split else replace(p, split=split) for p in prompts]


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [s for s in PAPER_SPLITS if s in names]
    return known + sorted(n for n in names if n not in PAPER_SPLITS)


def _group(prompts: Iterable[Prompt]) -> dict[str, list[Prompt]]:
    out: dict[str, list[Prompt]] = {}
    for p in prompts:
        out.setdefault(p.split, []).append(p)
    return out


def assemble_suite(name: str, harmful: Iterable[Prompt], benign: Iterable[Prompt],
                   benign_for: dict[str, str] | Callable[[str], str]) -> PromptSuite:
    """Build a :class:`PromptSuite` from prompts grouped by ``Prompt.split``.

    ``benign_for`` maps each split to a benign pool (a dict or a function). Splits are
    ordered as in the paper, then alphabetically; an empty split or pool, or a pairing
    with a missing pool, is a :class:`UserError`.

    Args:
        name: the suite's name.
        harmful: the non-compliant prompts; their ``split`` names the splits.
        benign: the benign prompts; their ``split`` names the pools.
        benign_for: split name -> pool name.

    Example:
        >>> suite = assemble_suite("mine", harmful, benign, lambda split: "benign")  # doctest: +SKIP
    """
    groups = _group(harmful)
    pools = _group(benign)
    order = _ordered(groups)
    pairing = {s: (benign_for(s) if callable(benign_for) else benign_for.get(s)) for s in order}
    if not order:
        raise UserError(f"suite {name!r} has no non-compliant prompts")
    for split, pool in pairing.items():
        if pool is None:
            raise UserError(f"suite {name!r}: split {split!r} has no benign pool")
        if not pools.get(pool):
            raise UserError(f"suite {name!r}: split {split!r} needs benign pool {pool!r}, "
                            f"which has no prompts (pools: {sorted(pools) or 'none'})")
    try:
        return PromptSuite(name=name, splits={s: groups[s] for s in order},
                           benign={b: pools[b] for b in sorted(pools)},
                           benign_for=pairing)
    except ValueError as exc:
        raise UserError(f"suite {name!r}: {exc}") from None
