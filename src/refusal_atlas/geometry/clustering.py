"""Hierarchical clustering of the directions on ``1 - cosine``, with silhouette per k.

Average and complete linkage, labels for each k in 2..5 (only k < number of splits),
the best k by silhouette and a dendrogram leaf order for plotting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from ..errors import UserError
from .cosine import check_cosine, cosine_distance

__all__ = [
    "DEFAULT_KS",
    "LINKAGES",
    "PRIMARY_LINKAGE",
    "ClusteringResult",
    "LinkageClustering",
    "canonical_labels",
    "cluster_cosine_matrix",
    "k2_labels",
    "validate_ks",
]

LINKAGES: tuple[str, ...] = ("average", "complete")
PRIMARY_LINKAGE = "average"
DEFAULT_KS: tuple[int, ...] = (2, 3, 4, 5)


@dataclass
class LinkageClustering:
    """Hierarchical clustering of the splits with one linkage method."""

    method: str
    linkage: np.ndarray  # scipy linkage matrix [n-1, 4], optimal leaf ordering applied
    leaf_order: list[int]  # indices into names, dendrogram order
    labels: dict[int, list[int]]  # k -> 0-based label per split (numbered along leaf_order)
    silhouette: dict[int, float | None]  # k -> mean silhouette (None when undefined)
    best_k: int | None
    best_silhouette: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "linkage": self.linkage.tolist(),
            "leaf_order": list(self.leaf_order),
            "labels": {str(k): list(v) for k, v in self.labels.items()},
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "best_k": self.best_k,
            "best_silhouette": self.best_silhouette,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinkageClustering:
        return cls(
            method=d["method"],
            linkage=np.asarray(d["linkage"], dtype=np.float64).reshape(-1, 4),
            leaf_order=[int(i) for i in d["leaf_order"]],
            labels={int(k): [int(x) for x in v] for k, v in d["labels"].items()},
            silhouette={int(k): (None if v is None else float(v))
                        for k, v in d["silhouette"].items()},
            best_k=None if d.get("best_k") is None else int(d["best_k"]),
            best_silhouette=None if d.get("best_silhouette") is None
            else float(d["best_silhouette"]),
        )


@dataclass
class ClusteringResult:
    """Clustering of a cosine matrix under every linkage method."""

    names: list[str]
    ks: list[int]  # the k values actually evaluated (2 <= k < n)
    linkages: dict[str, LinkageClustering]
    skipped_reason: str | None = None  # why no k could be evaluated (n = 2)
    primary: str = PRIMARY_LINKAGE

    @property
    def best_k(self) -> int | None:
        return self.linkages[self.primary].best_k

    @property
    def leaf_order(self) -> list[int]:
        return self.linkages[self.primary].leaf_order

    def labels(self, k: int | None = None, linkage: str | None = None) -> list[int] | None:
        """Labels for ``k`` (default: best k) under ``linkage`` (default: primary)."""
        lk = self.linkages[linkage or self.primary]
        k = lk.best_k if k is None else k
        return None if k is None else lk.labels.get(k)

    def clusters(self, k: int | None = None, linkage: str | None = None) -> list[list[str]]:
        """Members of each cluster (in label order), or [] when clustering was skipped."""
        labels = self.labels(k, linkage)
        if labels is None:
            return []
        return [[self.names[i] for i in range(len(self.names)) if labels[i] == c]
                for c in range(max(labels) + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "ks": list(self.ks),
            "primary_linkage": self.primary,
            "best_k": self.best_k,
            "leaf_order": list(self.leaf_order),
            "skipped_reason": self.skipped_reason,
            "linkages": {m: lk.to_dict() for m, lk in self.linkages.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClusteringResult:
        return cls(
            names=list(d["names"]),
            ks=[int(k) for k in d["ks"]],
            linkages={m: LinkageClustering.from_dict(v) for m, v in d["linkages"].items()},
            skipped_reason=d.get("skipped_reason"),
            primary=d.get("primary_linkage", PRIMARY_LINKAGE),
        )


def canonical_labels(raw: np.ndarray, leaf_order: Sequence[int]) -> list[int]:
    """Renumber cluster ids 0.. in order of first appearance along the leaf order.

    Args:
        raw: one cluster id per split (any numbering, e.g. scipy's ``fcluster``).
        leaf_order: split indices in the order that defines the numbering.
    """
    mapping: dict[int, int] = {}
    for i in leaf_order:
        mapping.setdefault(int(raw[i]), len(mapping))
    return [mapping[int(x)] for x in raw]


def _silhouette(dist: np.ndarray, labels: Sequence[int]) -> float | None:
    from sklearn.metrics import silhouette_score  # sklearn is slow to import; defer it

    n_labels = len(set(labels))
    if not 2 <= n_labels <= len(labels) - 1:
        return None
    return float(silhouette_score(dist, np.asarray(labels), metric="precomputed"))


def validate_ks(ks: Sequence[int]) -> list[int]:
    """Sorted, de-duplicated numbers of clusters, each >= 2.

    Args:
        ks: the requested numbers of clusters.
    """
    try:
        ks = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise UserError(f"ks must be integers, got {ks!r}") from None
    if not ks:
        raise UserError("ks must name at least one number of clusters")
    if ks[0] < 2:
        raise UserError(f"numbers of clusters must be >= 2, got {ks[0]}")
    return ks


def _linkage_matrix(dist: np.ndarray, method: str) -> np.ndarray:
    condensed = squareform(dist, checks=False)
    z = hierarchy.linkage(condensed, method=method)
    if dist.shape[0] > 2:
        z = hierarchy.optimal_leaf_ordering(z, condensed)
    return z


def cluster_cosine_matrix(
    names: Sequence[str],
    cos: Any,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    linkages: Sequence[str] = LINKAGES,
) -> ClusteringResult:
    """Hierarchical clustering of a precomputed cosine matrix on distance ``1 - cos``.

    For every linkage method: scipy linkage on the condensed distances (with optimal
    leaf ordering, which does not change the partitions), labels per k from
    ``fcluster(..., "maxclust")``, sklearn silhouette (metric="precomputed") per k, the k
    with the highest silhouette (ties: the smaller k) and the dendrogram leaf order.
    Only k < n_splits is evaluated; with 2 splits nothing can be, and
    ``skipped_reason`` says so.

    Args:
        names: one unique name per row of ``cos``.
        cos: symmetric cosine matrix [n, n].
        ks: numbers of clusters to evaluate.
        linkages: scipy linkage methods (average, complete, single or weighted).

    Example:
        >>> res = cluster_cosine_matrix(["a", "b", "c"], np.array(
        ...     [[1.0, 0.9, 0.0], [0.9, 1.0, 0.1], [0.0, 0.1, 1.0]]), ks=(2,))
        >>> res.clusters(2)
        [['c'], ['a', 'b']]
    """
    names, cos = check_cosine(names, cos)
    ks_req = validate_ks(ks)
    bad = [m for m in linkages if m not in ("single", "complete", "average", "weighted")]
    if bad or not linkages:
        raise UserError(f"unsupported linkage method(s): {bad or linkages}; "
                        "use average, complete, single or weighted")
    n = len(names)
    dist = cosine_distance(cos)
    ks_used = [k for k in ks_req if k < n]
    skipped = None
    if not ks_used:
        skipped = (f"clustering needs more splits than clusters: with {n} directions no k in "
                   f"{ks_req} satisfies 2 <= k < {n}, so no labels or silhouette were computed")
    out: dict[str, LinkageClustering] = {}
    for method in linkages:
        z = _linkage_matrix(dist, method)
        leaf_order = [int(i) for i in hierarchy.leaves_list(z)]
        labels: dict[int, list[int]] = {}
        sil: dict[int, float | None] = {}
        for k in ks_used:
            raw = hierarchy.fcluster(z, t=k, criterion="maxclust")
            labels[k] = canonical_labels(raw, leaf_order)
            sil[k] = _silhouette(dist, labels[k])
        scored = [(s, -k) for k, s in sil.items() if s is not None]
        best_k = best_s = None
        if scored:
            best_s, neg_k = max(scored)
            best_k = -neg_k
        out[method] = LinkageClustering(method, z, leaf_order, labels, sil, best_k, best_s)
    primary = PRIMARY_LINKAGE if PRIMARY_LINKAGE in out else next(iter(out))
    return ClusteringResult(names, ks_used, out, skipped, primary)


def k2_labels(cos: np.ndarray) -> list[int]:
    """scipy's k=2 average-linkage labels (1-based, not renumbered) of a cosine matrix.

    Args:
        cos: symmetric cosine matrix [n, n], n >= 3.
    """
    z = hierarchy.linkage(squareform(cosine_distance(cos), checks=False), method="average")
    return [int(x) for x in hierarchy.fcluster(z, t=2, criterion="maxclust")]

