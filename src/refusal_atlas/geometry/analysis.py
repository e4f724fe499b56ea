"""The geometry analysis: cosine matrix, clustering, MDS, summary and (optionally) bootstrap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import UserError
from .bootstrap import bootstrap_stability, pool_pair
from .clustering import (
    DEFAULT_KS,
    LINKAGES,
    ClusteringResult,
    cluster_cosine_matrix,
    k2_labels,
    validate_ks,
)
from .cosine import check_cosine, cosine_distance, cosine_matrix, stack_directions
from .mds import mds_coordinates
from .result import GeometryResult

__all__ = ["analyze_geometry", "geometry_from_cosine"]


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


def geometry_from_cosine(
    names: Sequence[str],
    cos: Any,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
) -> GeometryResult:
    """Clustering, MDS and summary of a precomputed cosine matrix (no bootstrap).

    Args:
        names: one unique name per row of ``cos``.
        cos: symmetric cosine matrix [n, n], e.g. a published table.
        ks: numbers of clusters to evaluate.
        seed: random state of the MDS.

    Example:
        >>> res = geometry_from_cosine(["a", "b", "c"], np.array(
        ...     [[1.0, 0.9, 0.0], [0.9, 1.0, 0.1], [0.0, 0.1, 1.0]]), ks=(2,))
        >>> res.best_k
        2
    """
    clustering = cluster_cosine_matrix(names, cos, ks=ks)
    names, cos = check_cosine(names, cos)
    coords, stress = mds_coordinates(cosine_distance(cos), seed=seed)
    return GeometryResult(
        names=names, cosine=cos, clustering=clustering, mds=coords, mds_stress=stress,
        summary=_summary(names, cos, clustering),
        params={"ks": list(validate_ks(ks)), "seed": int(seed),
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

    Args:
        directions: split name -> direction [d_model]; at least two.
        bootstrap_pools: split name -> (hr, bc) activations, or None for no bootstrap.
        n_resamples: bootstrap resamples.
        n_hr_sample: HR rows per resample.
        n_bc_sample: BC rows per resample.
        ks: numbers of clusters to evaluate.
        seed: seed of the MDS and the bootstrap.

    Example:
        >>> import refusal_atlas as ra
        >>> dirs = ra.load_directions("runs/demo/directions")  # doctest: +SKIP
        >>> geo = ra.analyze_geometry({n: d.vector for n, d in dirs.items()})  # doctest: +SKIP
        >>> geo.best_k, geo.clustering.clusters()  # doctest: +SKIP
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
        d_model = stack_directions(directions)[1].shape[1]
        ordered = {x: pool_pair(x, bootstrap_pools[x]) for x in names}  # converted once
        for x, (hr, _) in ordered.items():
            if hr.shape[1] != d_model:
                raise UserError(f"bootstrap activations of {x!r} have width {hr.shape[1]} but "
                                f"the directions have d_model {d_model}")
        ref = None
        if len(names) >= 3:
            ref = result.clustering.linkages["average"].labels.get(2)
            if ref is None:  # k=2 not among ks: compute it anyway
                ref = k2_labels(cos)
        boot = bootstrap_stability(ordered, n_resamples=n_resamples, n_hr_sample=n_hr_sample,
                                   n_bc_sample=n_bc_sample, seed=seed, reference_labels=ref)
        if ref is not None:
            boot.reference = "directions, average linkage, k=2"
        result.bootstrap = boot
    return result
