"""Geometry of the per-split refusal directions (METHOD.md, section Geometry).

The stage takes one unit direction per split and describes how they relate:

* the cosine-similarity matrix;
* hierarchical clustering on ``1 - cosine`` (average and complete linkage), silhouette
  for k = 2..5, cluster labels per k, the best k and a leaf order for plotting;
* a 2-D metric MDS embedding of the same distances;
* bootstrap stability: directions recomputed from resampled HR/BC activations.

Core functions are pure (numpy in, dataclasses out). The figure writers use
matplotlib's object-oriented API with the Agg canvas, so they never touch pyplot's
global state or need a display. ``save_geometry`` / ``load_geometry`` are the thin
run-folder wrappers.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from .artifacts import read_json, write_json
from .errors import UserError
from .figures import new_figure, palette, save_png

__all__ = [
    "DEFAULT_KS",
    "LINKAGES",
    "BootstrapResult",
    "ClusteringResult",
    "GeometryResult",
    "LinkageClustering",
    "analyze_geometry",
    "bootstrap_stability",
    "cluster_cosine_matrix",
    "cosine_distance",
    "cosine_matrix",
    "geometry_from_cosine",
    "load_geometry",
    "mds_coordinates",
    "plot_cosine_heatmap",
    "plot_dendrogram",
    "plot_mds",
    "save_geometry",
]

LINKAGES: tuple[str, ...] = ("average", "complete")
PRIMARY_LINKAGE = "average"
DEFAULT_KS: tuple[int, ...] = (2, 3, 4, 5)
FORMAT = "refusal-atlas/geometry"
FORMAT_VERSION = 1
GEOMETRY_JSON = "geometry.json"
FIGURE_FILES = {
    "cosine_heatmap": "cosine_heatmap.png",
    "dendrogram_average": "dendrogram_average.png",
    "dendrogram_complete": "dendrogram_complete.png",
    "mds": "mds.png",
}


# --------------------------------------------------------------------------- inputs


def _to_numpy(x: Any, what: str) -> np.ndarray:
    """float64 numpy copy of a numpy array or torch tensor (any dtype, any device)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().to("cpu").float().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{what} is not a numeric array (got {type(x).__name__})") from None
    return arr


def _stack_directions(directions: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """Validate the directions and stack them as rows of a float64 [n, d] matrix."""
    if not isinstance(directions, Mapping):
        raise UserError("directions must be a mapping from split name to vector")
    names = [str(k) for k in directions]
    if len(names) < 2:
        raise UserError(
            f"geometry needs at least 2 refusal directions, got {len(names)}"
            + (f" ({names[0]})" if names else "")
        )
    rows = []
    dim: int | None = None
    first = None
    for name, vec in directions.items():
        arr = _to_numpy(vec, f"direction {name!r}")
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise UserError(
                f"direction {name!r} must be a vector [d_model], got shape {tuple(arr.shape)}"
            )
        if dim is None:
            dim, first = arr.shape[0], name
        elif arr.shape[0] != dim:
            raise UserError(
                f"directions have different dimensions: {first!r} has {dim}, "
                f"{name!r} has {arr.shape[0]}"
            )
        if not np.all(np.isfinite(arr)):
            raise UserError(f"direction {name!r} contains NaN or infinite values")
        if float(np.linalg.norm(arr)) == 0.0:
            raise UserError(f"direction {name!r} is the zero vector; it has no direction")
        rows.append(arr)
    if dim == 0:
        raise UserError("directions are empty vectors (d_model = 0)")
    return names, np.stack(rows)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def cosine_matrix(directions: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """Pairwise cosine similarity of the directions (numpy or torch, any float dtype).

    Returns the split names in the mapping's insertion order and a symmetric float64
    [n, n] matrix with an exact unit diagonal, clipped to [-1, 1]. The vectors are
    normalised here, so they need not be exactly unit length.
    """
    names, mat = _stack_directions(directions)
    unit = _unit_rows(mat)
    cos = unit @ unit.T
    cos = np.clip((cos + cos.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(cos, 1.0)
    return names, cos


def _check_cosine(names: Sequence[str], cos: Any) -> tuple[list[str], np.ndarray]:
    names = [str(n) for n in names]
    cos = _to_numpy(cos, "cosine matrix")
    n = len(names)
    if n < 2:
        raise UserError(f"geometry needs at least 2 refusal directions, got {n}")
    if len(set(names)) != n:
        dup = sorted({x for x in names if names.count(x) > 1})
        raise UserError(f"split names must be unique; repeated: {', '.join(dup)}")
    if cos.shape != (n, n):
        raise UserError(f"cosine matrix must be {n}x{n} for {n} names, got shape {cos.shape}")
    if not np.all(np.isfinite(cos)):
        raise UserError("cosine matrix contains NaN or infinite values")
    if np.max(np.abs(cos - cos.T)) > 1e-6:
        raise UserError("cosine matrix is not symmetric")
    if np.max(np.abs(cos)) > 1.0 + 1e-6:
        raise UserError("cosine matrix has entries outside [-1, 1]")
    cos = np.clip((cos + cos.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(cos, 1.0)
    return names, cos


def cosine_distance(cos: np.ndarray) -> np.ndarray:
    """Square distance matrix ``1 - cos`` with tiny negatives clipped and a zero diagonal."""
    dist = np.clip(1.0 - np.asarray(cos, dtype=np.float64), 0.0, None)
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    return dist


# --------------------------------------------------------------------------- clustering


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


def _canonical_labels(raw: np.ndarray, leaf_order: Sequence[int]) -> list[int]:
    """Renumber cluster ids 0.. in order of first appearance along the leaf order."""
    mapping: dict[int, int] = {}
    for i in leaf_order:
        mapping.setdefault(int(raw[i]), len(mapping))
    return [mapping[int(x)] for x in raw]


def _silhouette(dist: np.ndarray, labels: Sequence[int]) -> float | None:
    from sklearn.metrics import silhouette_score

    n_labels = len(set(labels))
    if not 2 <= n_labels <= len(labels) - 1:
        return None
    return float(silhouette_score(dist, np.asarray(labels), metric="precomputed"))


def _validate_ks(ks: Sequence[int]) -> list[int]:
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
    """
    names, cos = _check_cosine(names, cos)
    ks_req = _validate_ks(ks)
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
            labels[k] = _canonical_labels(raw, leaf_order)
            sil[k] = _silhouette(dist, labels[k])
        scored = [(s, -k) for k, s in sil.items() if s is not None]
        best_k = best_s = None
        if scored:
            best_s, neg_k = max(scored)
            best_k = -neg_k
        out[method] = LinkageClustering(method, z, leaf_order, labels, sil, best_k, best_s)
    primary = PRIMARY_LINKAGE if PRIMARY_LINKAGE in out else next(iter(out))
    return ClusteringResult(names, ks_used, out, skipped, primary)


# --------------------------------------------------------------------------- MDS


def _mds_estimator(n_components: int, seed: int):
    """A metric MDS on precomputed dissimilarities, across sklearn's renamed arguments.

    sklearn >= 1.8 renamed ``dissimilarity`` -> ``metric`` and ``metric`` (bool) ->
    ``metric_mds``, and added ``init``; older versions only know the old names. We look
    at the installed signature rather than parsing version strings.
    """
    from sklearn.manifold import MDS

    params = inspect.signature(MDS.__init__).parameters
    kw: dict[str, Any] = {"n_components": n_components, "random_state": seed, "max_iter": 1000}
    if "metric_mds" in params:
        kw.update(metric="precomputed", metric_mds=True)
    else:
        kw.update(dissimilarity="precomputed", metric=True)
    if "init" in params:
        kw["init"] = "classical_mds"  # deterministic start; n_init is then unused
    else:
        kw["n_init"] = 8
    if "normalized_stress" in params:
        kw["normalized_stress"] = False  # we compute Kruskal's stress-1 ourselves
    return MDS(**kw)


def _classical_mds(dist: np.ndarray, n_components: int) -> np.ndarray:
    n = dist.shape[0]
    centre = np.eye(n) - np.full((n, n), 1.0 / n)
    gram = -0.5 * centre @ (dist ** 2) @ centre
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:n_components]
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    if coords.shape[1] < n_components:
        coords = np.pad(coords, ((0, 0), (0, n_components - coords.shape[1])))
    return coords


def _canonical_orientation(coords: np.ndarray) -> np.ndarray:
    """Centre, rotate to principal axes and fix signs, so runs are comparable."""
    coords = coords - coords.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(coords, full_matrices=False)
    coords = coords @ vt.T
    for j in range(coords.shape[1]):
        i = int(np.argmax(np.abs(coords[:, j])))
        if coords[i, j] < 0:
            coords[:, j] = -coords[:, j]
    return coords


def mds_coordinates(dist: Any, *, n_components: int = 2, seed: int = 0
                    ) -> tuple[np.ndarray, float]:
    """Metric MDS of a square distance matrix; returns (coords [n, n_components], stress-1).

    Stress-1 is Kruskal's sqrt(sum (d_ij - e_ij)^2 / sum d_ij^2) over pairs, where e are
    the embedded distances (0 = perfect; about 0.1 is "fair").
    """
    dist = _to_numpy(dist, "distance matrix")
    n = dist.shape[0] if dist.ndim == 2 else 0
    if dist.shape != (n, n) or n < 2:
        raise UserError(f"MDS needs a square distance matrix of >= 2 items, got {dist.shape}")
    dist = cosine_distance(1.0 - dist)  # symmetrise, clip, zero diagonal
    if n == 2:
        coords = np.zeros((2, n_components))
        coords[:, 0] = [-dist[0, 1] / 2.0, dist[0, 1] / 2.0]
    else:
        try:
            with warnings.catch_warnings():  # the NaN case is handled just below
                warnings.simplefilter("ignore", RuntimeWarning)
                coords = np.asarray(_mds_estimator(n_components, seed).fit_transform(dist),
                                    dtype=np.float64)
            if not np.all(np.isfinite(coords)):
                raise ValueError("non-finite MDS coordinates")
        except ValueError:
            # sklearn's classical-MDS start takes square roots of negative eigenvalues for
            # tiny or degenerate configurations (e.g. 3 directions); Torgerson's solution
            # with eigenvalues clipped at zero is the exact answer there.
            coords = _classical_mds(dist, n_components)
        coords = _canonical_orientation(coords)
    emb = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    iu = np.triu_indices(n, 1)
    denom = float(np.sum(dist[iu] ** 2))
    stress = math.sqrt(float(np.sum((dist[iu] - emb[iu]) ** 2)) / denom) if denom > 0 else 0.0
    return coords, stress


# --------------------------------------------------------------------------- bootstrap


@dataclass
class BootstrapResult:
    """Stability of the directions under resampling of the HR/BC training rows."""

    names: list[str]
    n_resamples: int
    n_hr_sample: int
    n_bc_sample: int
    seed: int
    per_split: dict[str, dict[str, Any]]  # within-split cosine mean/std, pool sizes, ...
    mean_cosine: np.ndarray  # [n, n] cosine matrix averaged over resamples
    std_cosine: np.ndarray  # [n, n] its std over resamples
    cross_split: list[dict[str, Any]]  # one row per split pair: a, b, mean, std
    reference_labels: list[int] | None  # k=2 average-linkage labels compared against
    k2_match_fraction: float | None  # resamples whose k=2 partition equals the reference
    k2_ari_mean: float | None  # mean adjusted Rand index to the reference
    reference: str = ""  # what reference_labels came from
    # [n, R, d] resampled unit directions; only with keep_directions=True, never serialised
    directions: np.ndarray | None = field(default=None, repr=False)

    def within(self, name: str) -> float:
        return float(self.per_split[name]["within_mean"])

    def cross(self, a: str, b: str) -> float:
        i, j = self.names.index(a), self.names.index(b)
        return float(self.mean_cosine[i, j])

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "n_resamples": self.n_resamples,
            "n_hr_sample": self.n_hr_sample,
            "n_bc_sample": self.n_bc_sample,
            "seed": self.seed,
            "per_split": {k: dict(v) for k, v in self.per_split.items()},
            "mean_cosine": self.mean_cosine.tolist(),
            "std_cosine": self.std_cosine.tolist(),
            "cross_split": [dict(r) for r in self.cross_split],
            "reference": self.reference,
            "reference_labels": self.reference_labels,
            "k2_match_fraction": self.k2_match_fraction,
            "k2_ari_mean": self.k2_ari_mean,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BootstrapResult:
        return cls(
            names=list(d["names"]),
            n_resamples=int(d["n_resamples"]),
            n_hr_sample=int(d["n_hr_sample"]),
            n_bc_sample=int(d["n_bc_sample"]),
            seed=int(d["seed"]),
            per_split={k: dict(v) for k, v in d["per_split"].items()},
            mean_cosine=np.asarray(d["mean_cosine"], dtype=np.float64),
            std_cosine=np.asarray(d["std_cosine"], dtype=np.float64),
            cross_split=[dict(r) for r in d["cross_split"]],
            reference_labels=None if d.get("reference_labels") is None
            else [int(x) for x in d["reference_labels"]],
            k2_match_fraction=d.get("k2_match_fraction"),
            k2_ari_mean=d.get("k2_ari_mean"),
            reference=d.get("reference", ""),
        )


def _pool_pair(name: str, pool: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pool, Mapping):
        try:
            hr, bc = pool["hr"], pool["bc"]
        except KeyError:
            raise UserError(f"bootstrap pool {name!r} must have keys 'hr' and 'bc'") from None
    else:
        try:
            hr, bc = pool
        except (TypeError, ValueError):
            raise UserError(f"bootstrap pool {name!r} must be (hr, bc) activation matrices") \
                from None
    hr = _to_numpy(hr, f"HR activations of {name!r}")
    bc = _to_numpy(bc, f"BC activations of {name!r}")
    for what, m in (("HR", hr), ("BC", bc)):
        if m.ndim != 2 or m.shape[0] == 0:
            raise UserError(f"{what} activations of {name!r} must be a non-empty [n, d_model] "
                            f"matrix, got shape {tuple(m.shape)}")
        if not np.all(np.isfinite(m)):
            raise UserError(f"{what} activations of {name!r} contain NaN or infinite values")
    if hr.shape[1] != bc.shape[1]:
        raise UserError(f"HR and BC activations of {name!r} have different widths "
                        f"({hr.shape[1]} vs {bc.shape[1]})")
    return hr, bc


def _resample_means(x: np.ndarray, m: int, n_resamples: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, bool]:
    """[n_resamples, d] means of m rows drawn from x; without replacement iff pool > m."""
    n_pool = x.shape[0]
    replace = n_pool <= m
    if replace:
        idx = rng.integers(0, n_pool, size=(n_resamples, m))
    else:
        # the m smallest of n_pool uniform keys form a uniform random m-subset
        keys = rng.random((n_resamples, n_pool))
        idx = np.argpartition(keys, m - 1, axis=1)[:, :m]
    flat = (np.arange(n_resamples)[:, None] * n_pool + idx).ravel()
    weights = np.bincount(flat, minlength=n_resamples * n_pool).reshape(n_resamples, n_pool)
    return (weights / m) @ x, replace


def _split_rng(seed: int, name: str) -> np.random.Generator:
    """One generator per split, independent of the order (and number) of splits."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def _k2_labels(cos: np.ndarray) -> list[int]:
    z = hierarchy.linkage(squareform(cosine_distance(cos), checks=False), method="average")
    return [int(x) for x in hierarchy.fcluster(z, t=2, criterion="maxclust")]


def bootstrap_stability(
    pools: Mapping[str, Any],
    *,
    n_resamples: int = 100,
    n_hr_sample: int = 32,
    n_bc_sample: int = 32,
    seed: int = 0,
    reference_labels: Sequence[int] | None = None,
    keep_directions: bool = False,
) -> BootstrapResult:
    """Resample each split's HR/BC rows and measure how stable the directions are.

    ``pools`` maps split name -> ``(hr, bc)`` (or ``{"hr": ..., "bc": ...}``), the HR
    activations [n_hr, d] and BC activations [n_bc, d] of the split's available pool
    (numpy or torch). Each resample draws ``n_hr_sample`` HR and ``n_bc_sample`` BC rows
    (without replacement when the pool is larger than the sample, otherwise with
    replacement) and recomputes d = unit(mean(HR) - mean(BC)).

    Reports per split the mean/std cosine between resampled directions of that split over
    all pairs of resamples ("within"), and the mean cosine of the resampled directions to
    the full-pool direction; per split pair the mean/std cosine between the two splits'
    directions of the same resample; the cosine matrix averaged over resamples; and how
    often a resample's average-linkage k=2 partition equals ``reference_labels`` (default:
    the partition of the full-pool directions), with the mean adjusted Rand index.
    ``keep_directions`` keeps the resampled directions [n, R, d] on the result.
    """
    from sklearn.metrics import adjusted_rand_score

    if not isinstance(pools, Mapping) or len(pools) == 0:
        raise UserError("bootstrap needs a mapping from split name to (hr, bc) activations")
    n_resamples, n_hr_sample, n_bc_sample = int(n_resamples), int(n_hr_sample), int(n_bc_sample)
    if n_resamples < 2:
        raise UserError(f"bootstrap needs at least 2 resamples, got {n_resamples}")
    if n_hr_sample < 1 or n_bc_sample < 1:
        raise UserError("bootstrap sample sizes must be at least 1 row each")
    names = [str(k) for k in pools]
    n = len(names)
    dirs = []
    full = []
    per_split: dict[str, dict[str, Any]] = {}
    dim: int | None = None
    for name, pool in pools.items():
        hr, bc = _pool_pair(str(name), pool)
        if dim is None:
            dim = hr.shape[1]
        elif hr.shape[1] != dim:
            raise UserError(f"bootstrap pools have different widths: {names[0]!r} has {dim}, "
                            f"{name!r} has {hr.shape[1]}")
        rng = _split_rng(seed, str(name))
        mu_hr, hr_replace = _resample_means(hr, n_hr_sample, n_resamples, rng)
        mu_bc, bc_replace = _resample_means(bc, n_bc_sample, n_resamples, rng)
        diff = mu_hr - mu_bc
        norms = np.linalg.norm(diff, axis=1)
        if np.any(norms == 0):
            raise UserError(f"split {name!r}: a resample has identical HR and BC means, so its "
                            "direction is undefined (are the HR and BC activations the same?)")
        d_res = diff / norms[:, None]
        full_diff = hr.mean(axis=0) - bc.mean(axis=0)
        full_norm = float(np.linalg.norm(full_diff))
        if full_norm == 0:
            raise UserError(f"split {name!r}: mean HR and BC activations are identical, so "
                            "its direction is undefined")
        d_full = full_diff / full_norm
        gram = d_res @ d_res.T
        pairs = gram[np.triu_indices(n_resamples, 1)]
        to_full = d_res @ d_full
        per_split[str(name)] = {
            "n_hr_pool": int(hr.shape[0]),
            "n_bc_pool": int(bc.shape[0]),
            "hr_sampling": "with_replacement" if hr_replace else "without_replacement",
            "bc_sampling": "with_replacement" if bc_replace else "without_replacement",
            "within_mean": float(pairs.mean()),
            "within_std": float(pairs.std()),
            "to_full_mean": float(to_full.mean()),
            "to_full_std": float(to_full.std()),
        }
        dirs.append(d_res)
        full.append(d_full)
    stacked = np.stack(dirs)  # [n, R, d]
    by_resample = np.ascontiguousarray(stacked.transpose(1, 0, 2))  # [R, n, d]
    per_resample = by_resample @ by_resample.transpose(0, 2, 1)  # [R, n, n]
    per_resample = np.clip(per_resample, -1.0, 1.0)
    mean_cos = per_resample.mean(axis=0)
    std_cos = per_resample.std(axis=0)
    np.fill_diagonal(mean_cos, 1.0)
    np.fill_diagonal(std_cos, 0.0)
    cross = [
        {"a": names[i], "b": names[j], "mean": float(mean_cos[i, j]), "std": float(std_cos[i, j])}
        for i in range(n) for j in range(i + 1, n)
    ]
    ref_labels = match = ari = None
    reference = ""
    if n >= 3:
        if reference_labels is not None:
            ref_labels = [int(x) for x in reference_labels]
            if len(ref_labels) != n:
                raise UserError(f"reference_labels has {len(ref_labels)} entries for {n} splits")
            reference = "given"
        else:
            f = np.stack(full)
            ref_labels = _k2_labels(f @ f.T)
            reference = "full-pool directions, average linkage, k=2"
        cache: dict[tuple[int, ...], float] = {}  # few distinct partitions: score each once
        aris = []
        for c in per_resample:
            part = _k2_labels(c)
            key = tuple(_canonical_labels(np.asarray(part), range(n)))
            if key not in cache:
                cache[key] = float(adjusted_rand_score(ref_labels, part))
            aris.append(cache[key])
        aris = np.asarray(aris)
        match = float(np.mean(aris > 1.0 - 1e-9))
        ari = float(aris.mean())
    else:
        reference = "skipped: k=2 clustering needs at least 3 splits"
    return BootstrapResult(
        names=names, n_resamples=n_resamples, n_hr_sample=n_hr_sample,
        n_bc_sample=n_bc_sample, seed=int(seed), per_split=per_split, mean_cosine=mean_cos,
        std_cosine=std_cos, cross_split=cross, reference_labels=ref_labels,
        k2_match_fraction=match, k2_ari_mean=ari, reference=reference,
        directions=stacked if keep_directions else None,
    )


# --------------------------------------------------------------------------- analysis


def _summary(names: list[str], cos: np.ndarray, clustering: ClusteringResult
             ) -> dict[str, Any]:
    n = len(names)
    iu = np.triu_indices(n, 1)
    off = cos[iu]
    lo, hi = int(np.argmin(off)), int(np.argmax(off))
    out: dict[str, Any] = {
        "n_splits": n,
        "min_offdiag_cosine": float(off.min()),
        "max_offdiag_cosine": float(off.max()),
        "mean_offdiag_cosine": float(off.mean()),
        "min_pair": [names[iu[0][lo]], names[iu[1][lo]]],
        "max_pair": [names[iu[0][hi]], names[iu[1][hi]]],
    }
    labels = clustering.labels()
    if labels is not None:
        lab = np.asarray(labels)
        same = lab[:, None] == lab[None, :]
        mask_off = ~np.eye(n, dtype=bool)
        within = []
        for c in range(lab.max() + 1):
            members = lab == c
            block = cos[np.ix_(members, members)]
            m = int(members.sum())
            within.append(float((block.sum() - m) / (m * (m - 1))) if m > 1 else None)
        between = cos[~same & mask_off]
        out.update({
            "best_k": clustering.best_k,
            "best_silhouette": clustering.linkages[clustering.primary].best_silhouette,
            "clusters": clustering.clusters(),
            "within_cluster_mean_cosine": within,
            "between_cluster_mean_cosine": float(between.mean()) if between.size else None,
        })
    return out


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


def geometry_from_cosine(
    names: Sequence[str],
    cos: Any,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
) -> GeometryResult:
    """Clustering, MDS and summary of a precomputed cosine matrix (no bootstrap)."""
    clustering = cluster_cosine_matrix(names, cos, ks=ks)
    names, cos = _check_cosine(names, cos)
    coords, stress = mds_coordinates(cosine_distance(cos), seed=seed)
    return GeometryResult(
        names=names, cosine=cos, clustering=clustering, mds=coords, mds_stress=stress,
        summary=_summary(names, cos, clustering),
        params={"ks": list(_validate_ks(ks)), "seed": int(seed),
                "linkages": list(LINKAGES), "distance": "1 - cosine"},
    )


def analyze_geometry(
    directions: Mapping[str, Any],
    *,
    bootstrap_pools: Mapping[str, Any] | None = None,
    n_resamples: int = 100,
    n_hr_sample: int = 32,
    n_bc_sample: int = 32,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
) -> GeometryResult:
    """The geometry stage: cosine matrix, clustering, MDS and (optionally) bootstrap.

    ``directions`` maps split name -> direction [d_model] (numpy or torch). When
    ``bootstrap_pools`` is given it must have the same split names (see
    :func:`bootstrap_stability` for its format); resampled k=2 partitions are compared
    with the average-linkage k=2 partition of ``directions``.
    """
    names, cos = cosine_matrix(directions)
    result = geometry_from_cosine(names, cos, ks=ks, seed=seed)
    result.params.update({"n_resamples": int(n_resamples), "n_hr_sample": int(n_hr_sample),
                          "n_bc_sample": int(n_bc_sample)})
    if bootstrap_pools is not None:
        pool_names = [str(k) for k in bootstrap_pools]
        missing = [x for x in names if x not in pool_names]
        extra = [x for x in pool_names if x not in names]
        if missing or extra:
            raise UserError("bootstrap pools must cover exactly the directions' splits"
                            + (f"; missing: {', '.join(missing)}" if missing else "")
                            + (f"; unexpected: {', '.join(extra)}" if extra else ""))
        d_model = _stack_directions(directions)[1].shape[1]
        ordered = {x: _pool_pair(x, bootstrap_pools[x]) for x in names}  # converted once
        for x, (hr, _) in ordered.items():
            if hr.shape[1] != d_model:
                raise UserError(f"bootstrap activations of {x!r} have width {hr.shape[1]} but "
                                f"the directions have d_model {d_model}")
        ref = None
        if len(names) >= 3:
            ref = result.clustering.linkages["average"].labels.get(2)
            if ref is None:  # k=2 not among ks: compute it anyway
                ref = _k2_labels(cos)
        boot = bootstrap_stability(ordered, n_resamples=n_resamples, n_hr_sample=n_hr_sample,
                                   n_bc_sample=n_bc_sample, seed=seed, reference_labels=ref)
        if ref is not None:
            boot.reference = "directions, average linkage, k=2"
        result.bootstrap = boot
    return result


# --------------------------------------------------------------------------- figures


def _plot_labels(result: GeometryResult, k: int | None, linkage: str) -> list[int] | None:
    lk = result.clustering.linkages[linkage]
    k = lk.best_k if k is None else k
    if k is None:
        return None
    if k not in lk.labels:
        raise UserError(f"no clustering with k={k} (available: {sorted(lk.labels)})")
    return lk.labels[k]


def plot_cosine_heatmap(result: GeometryResult, path: str | os.PathLike, *,
                        k: int | None = None, linkage: str = PRIMARY_LINKAGE) -> Path:
    """Annotated cosine heatmap, rows/columns in dendrogram leaf order, clusters boxed."""
    from matplotlib.colors import TwoSlopeNorm

    n = len(result.names)
    order = result.clustering.linkages[linkage].leaf_order
    labels = _plot_labels(result, k, linkage)
    mat = result.cosine[np.ix_(order, order)]
    names = [result.names[i] for i in order]
    side = max(5.0, 0.62 * n + 3.0)
    fig = new_figure((side + 1.2, side))
    ax = fig.add_subplot(1, 1, 1)
    norm = TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=1.0)
    im = ax.imshow(mat, cmap="RdBu_r", norm=norm, interpolation="nearest")
    fontsize = 9 if n <= 12 else max(5, 9 - (n - 12) // 3)
    for i in range(n):
        for j in range(n):
            v = mat[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=50, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticklabels(names, fontsize=9)
    title = f"Cosine similarity of refusal directions ({linkage} linkage order)"
    if labels is not None:
        ordered = [labels[i] for i in order]
        colours = palette(max(labels) + 1)
        for tick, lab in zip(ax.get_xticklabels(), ordered):
            tick.set_color(colours[lab])
        for tick, lab in zip(ax.get_yticklabels(), ordered):
            tick.set_color(colours[lab])
        start = 0
        for pos in range(1, n + 1):
            if pos == n or ordered[pos] != ordered[start]:
                ax.add_patch(_rect(start - 0.5, pos - start, ax))
                start = pos
        kk = max(labels) + 1
        title += f", k={kk} clusters boxed"
    ax.set_title(title, fontsize=10)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("cosine similarity")
    return save_png(fig, path)


def _rect(start: float, size: int, ax):
    from matplotlib.patches import Rectangle

    return Rectangle((start, start), size, size, fill=False, edgecolor="black", linewidth=2.0,
                     transform=ax.transData, clip_on=False)


def plot_dendrogram(result: GeometryResult, path: str | os.PathLike, linkage: str = "average",
                    *, k: int | None = None) -> Path:
    """Dendrogram (leaves on the left, distance 1 - cosine), links coloured by cluster."""
    if linkage not in result.clustering.linkages:
        raise UserError(f"no {linkage!r} linkage in this result "
                        f"(have {', '.join(result.clustering.linkages)})")
    lk = result.clustering.linkages[linkage]
    n = len(result.names)
    z = lk.linkage
    labels = _plot_labels(result, k, linkage)
    fig = new_figure((8.5, max(3.0, 0.45 * n + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    colours = palette(max(labels) + 1) if labels is not None else None
    from matplotlib.colors import to_hex

    leaf_sets: dict[int, set[int]] = {i: {i} for i in range(n)}
    for row in range(z.shape[0]):
        leaf_sets[n + row] = leaf_sets[int(z[row, 0])] | leaf_sets[int(z[row, 1])]

    def link_colour(node: int) -> str:
        if labels is None:
            return "#444444"
        labs = {labels[i] for i in leaf_sets[node]}
        return to_hex(colours[labs.pop()]) if len(labs) == 1 else "#888888"

    hierarchy.dendrogram(z, labels=list(result.names), orientation="right", ax=ax,
                         link_color_func=link_colour, leaf_font_size=9)
    if labels is not None:
        for tick in ax.get_yticklabels():
            idx = result.names.index(tick.get_text())
            tick.set_color(colours[labels[idx]])
        kk = max(labels) + 1
        heights = np.sort(z[:, 2])
        if kk <= n - 1 and kk >= 2:
            cut = (heights[n - 1 - kk] + heights[n - kk]) / 2.0
            ax.axvline(cut, color="black", linestyle="--", linewidth=1)
            sil = lk.silhouette.get(kk)
            ax.set_title(f"{linkage} linkage on 1 - cosine; cut at k={kk}"
                         + (f" (silhouette {sil:.3f})" if sil is not None else ""), fontsize=10)
    else:
        ax.set_title(f"{linkage} linkage on 1 - cosine", fontsize=10)
    ax.set_xlabel("distance (1 - cosine)")
    ax.invert_yaxis()  # first leaf at the top, as in the heatmap
    return save_png(fig, path)


def plot_mds(result: GeometryResult, path: str | os.PathLike, *, k: int | None = None) -> Path:
    """2-D MDS map of the directions, coloured by the best-k cluster, points labelled."""
    labels = _plot_labels(result, k, result.clustering.primary)
    coords = result.mds
    n = len(result.names)
    span_x = float(np.ptp(coords[:, 0])) or 1.0
    span_y = float(np.ptp(coords[:, 1]))
    width = 9.0
    height = float(np.clip(width * (span_y + 0.3 * span_x) / (1.75 * span_x), 3.5, 9.0))
    fig = new_figure((width, height))
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=60, color="#444444", zorder=3)
    else:
        colours = palette(max(labels) + 1)
        for c in range(max(labels) + 1):
            idx = [i for i in range(n) if labels[i] == c]
            ax.scatter(coords[idx, 0], coords[idx, 1], s=70, color=colours[c], zorder=3,
                       edgecolor="black", linewidth=0.5, label=f"cluster {c + 1} ({len(idx)})")
        ax.legend(loc="best", fontsize=8, frameon=True)
    pad = 0.15 * span_x
    ax.set_xlim(coords[:, 0].min() - 2 * pad, coords[:, 0].max() + 3 * pad)
    ax.set_ylim(coords[:, 1].min() - pad, coords[:, 1].max() + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.apply_aspect()  # fix the final data->pixel transform before placing labels
    _place_labels(fig, ax, coords, result.names)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    kk = None if labels is None else max(labels) + 1
    ax.set_title(f"MDS of 1 - cosine (stress-1 {result.mds_stress:.3f})"
                 + (f", coloured by k={kk} clusters" if kk else ""), fontsize=10)
    return save_png(fig, path)


def _place_labels(fig, ax, coords: np.ndarray, names: Sequence[str]) -> None:
    """Label points, choosing for each the offset that overlaps placed labels the least."""
    offsets = [(6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"),
               (-6, -4, "right", "top"), (0, 8, "center", "bottom"), (0, -8, "center", "top")]
    renderer = fig.canvas.get_renderer()
    placed: list = []
    points = [ax.transData.transform(c) for c in coords]

    def cost(bbox, own: int) -> float:
        total = 0.0
        for other in placed:
            w = min(bbox.x1, other.x1) - max(bbox.x0, other.x0)
            h = min(bbox.y1, other.y1) - max(bbox.y0, other.y0)
            if w > 0 and h > 0:
                total += w * h
        for j, (px, py) in enumerate(points):  # covering another marker is bad too
            if j != own and bbox.x0 - 6 < px < bbox.x1 + 6 and bbox.y0 - 6 < py < bbox.y1 + 6:
                total += 60.0
        return total

    for i, name in enumerate(names):
        best = None
        for dx, dy, ha, va in offsets:
            text = ax.annotate(name, (coords[i, 0], coords[i, 1]), xytext=(dx, dy),
                               textcoords="offset points", fontsize=8, ha=ha, va=va)
            bbox = text.get_window_extent(renderer)
            c = cost(bbox, i)
            if best is None or c < best[0]:
                if best is not None:
                    best[1].remove()
                best = (c, text, bbox)
            else:
                text.remove()
            if c == 0:
                break
        placed.append(best[2])


# --------------------------------------------------------------------------- run folder


def save_geometry(result: GeometryResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write geometry.json and the figures into ``out_dir``; returns name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(out_dir / GEOMETRY_JSON, result.to_dict())}
    paths["cosine_heatmap"] = plot_cosine_heatmap(result, out_dir / FIGURE_FILES["cosine_heatmap"])
    for method in LINKAGES:
        if method in result.clustering.linkages:
            key = f"dendrogram_{method}"
            paths[key] = plot_dendrogram(result, out_dir / FIGURE_FILES[key], linkage=method)
    paths["mds"] = plot_mds(result, out_dir / FIGURE_FILES["mds"])
    return paths


def load_geometry(out_dir: str | os.PathLike) -> GeometryResult:
    """Read a result written by :func:`save_geometry` (a folder or the JSON file itself)."""
    path = Path(out_dir)
    if path.is_dir():
        path = path / GEOMETRY_JSON
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise UserError(f"{path} does not hold a geometry result")
    try:
        return GeometryResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is not a valid geometry result ({exc})") from None


# ---------------------------------------------------------------------------
# Run-folder stage


def run_geometry_stage(ctx, out_dir, resuming: bool) -> dict:
    """Geometry of the run's directions; bootstrap pools are every HR / BC prompt available."""
    from .activations import load_activation_table
    from .directions import load_directions
    from .labels import load_label_records

    cfg = ctx.config.geometry
    directions = load_directions(ctx.stage_dir("directions"))
    ids, acts, _ = load_activation_table(ctx.stage_dir("activations") / "acts.safetensors")
    row = {pid: k for k, pid in enumerate(ids)}
    label_of = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    suite = ctx.suite
    pools = {}
    for name in directions:
        hr = [row[p.id] for p in suite.splits[name] if label_of.get(p.id) == "HR" and p.id in row]
        bc = [row[p.id] for p in suite.benign[suite.benign_for[name]]
              if label_of.get(p.id) == "BC" and p.id in row]
        pools[name] = (acts[hr].numpy(), acts[bc].numpy())
    n_hr = max(d.n_hr for d in directions.values())
    n_bc = max(d.n_bc for d in directions.values())
    result = analyze_geometry({n: d.vector for n, d in directions.items()},
                              bootstrap_pools=pools if cfg.n_resamples > 0 else None,
                              n_resamples=max(cfg.n_resamples, 1), n_hr_sample=n_hr,
                              n_bc_sample=n_bc, ks=tuple(cfg.ks), seed=cfg.seed)
    save_geometry(result, out_dir)
    return {"best_k": result.best_k, **{k: v for k, v in result.summary.items()
                                        if isinstance(v, (int, float, str))}}
