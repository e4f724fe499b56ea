"""A finding: one experiment's question, what was measured, the criterion and the verdict.

Every beyond-the-paper stage writes its findings to ``findings.json`` in its stage folder;
the report lists them in stage order, whichever way each came out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import write_json

FINDINGS_FILE = "findings.json"


@dataclass
class Finding:
    """One verdict computed from numbers.

    Example:
        >>> f = Finding("subspace", "Is refusal one direction or a subspace?",
        ...             measured="RR 0.62 -> 0.20 at k=2 (n=24)",
        ...             criterion="smallest k with RR < half of baseline",
        ...             verdict="k = 2", supported=True)
        >>> f.to_dict()["verdict"]
        'k = 2'
    """

    experiment: str
    """Short id of the experiment (the stage name)."""
    question: str
    measured: str
    """The numbers, with counts and CIs, in one or two sentences."""
    criterion: str
    """How the verdict follows from the numbers, stated before looking at them."""
    verdict: str
    supported: bool | None = None
    """Whether the hypothesis in ``question`` holds (None: not decidable with this data)."""
    subject: str | None = None
    """What the finding is about when an experiment has several (a split, a layer)."""
    details: dict[str, Any] = field(default_factory=dict)
    """The numbers behind ``measured`` (JSON-ready)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        return cls(**data)


def write_findings(out_dir: Path, findings: Sequence[Finding]) -> Path:
    path = Path(out_dir) / FINDINGS_FILE
    write_json(path, {"findings": [f.to_dict() for f in findings]})
    return path


def read_findings(stage_dir: Path) -> list[Finding] | None:
    """The findings a stage wrote, or None when it has not written any."""
    path = Path(stage_dir) / FINDINGS_FILE
    if not path.is_file():
        return None
    return [Finding.from_dict(d) for d in json.loads(path.read_text())["findings"]]
