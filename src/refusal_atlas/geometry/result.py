"""``GeometryResult``: everything the geometry analysis knows about a set of directions.

It serialises to the JSON document ``geometry.json`` holds (``format`` / ``version``
guard against reading something else or a newer layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from .bootstrap import BootstrapResult
from .clustering import ClusteringResult

__all__ = ["FORMAT", "FORMAT_VERSION", "GeometryResult"]

FORMAT = "refusal-atlas/geometry"
FORMAT_VERSION = 1


@dataclass
class GeometryResult:
    """Everything the geometry stage knows about a set of directions."""

    names: list[str]
    cosine: np.ndarray  # [n, n]
    clustering: ClusteringResult
    mds: np.ndarray  # [n, 2]
    mds_stress: float
    summary: dict[str, Any]
    bootstrap: BootstrapResult | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def best_k(self) -> int | None:
        return self.clustering.best_k

    @property
    def leaf_order(self) -> list[int]:
        return self.clustering.leaf_order

    @property
    def skipped_reason(self) -> str | None:
        return self.clustering.skipped_reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "names": list(self.names),
            "cosine": self.cosine.tolist(),
            "clustering": self.clustering.to_dict(),
            "mds": {"coords": self.mds.tolist(), "stress1": self.mds_stress},
            "summary": self.summary,
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GeometryResult:
        if d.get("format") != FORMAT:
            raise UserError(f"not a refusal-atlas geometry result (format={d.get('format')!r})")
        if int(d.get("version", 0)) > FORMAT_VERSION:
            raise UserError(f"geometry result version {d.get('version')} is newer than this "
                            f"refusal-atlas understands ({FORMAT_VERSION}); upgrade it")
        return cls(
            names=list(d["names"]),
            cosine=np.asarray(d["cosine"], dtype=np.float64),
            clustering=ClusteringResult.from_dict(d["clustering"]),
            mds=np.asarray(d["mds"]["coords"], dtype=np.float64),
            mds_stress=float(d["mds"]["stress1"]),
            summary=dict(d["summary"]),
            bootstrap=None if d.get("bootstrap") is None
            else BootstrapResult.from_dict(d["bootstrap"]),
            params=dict(d.get("params", {})),
        )
