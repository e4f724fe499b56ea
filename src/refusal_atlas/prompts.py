"""The prompt data model every stage shares.

A *suite* is what a run studies: named non-compliant splits (harmful or otherwise
refusal-worthy prompts, one refusal direction each) and named benign pools, with
each split pointing at the benign pool it is contrasted with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class Prompt:
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
        from .errors import UserError

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
