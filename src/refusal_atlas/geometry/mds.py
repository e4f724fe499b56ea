"""2-D metric MDS of the directions' ``1 - cosine`` distances, with Kruskal's stress-1."""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np

from ..errors import UserError
from .cosine import cosine_distance, to_numpy

__all__ = ["mds_coordinates"]


def _mds_estimator(n_components: int, seed: int):
    """A metric MDS on precomputed dissimilarities, across sklearn's renamed arguments.

    sklearn >= 1.8 renamed ``dissimilarity`` -> ``metric`` and ``metric`` (bool) ->
    ``metric_mds``, and added ``init``; older versions only know the old names. We look
    at the installed signature rather than parsing version strings.
    """
    from sklearn.manifold import MDS  # sklearn is slow to import; defer it

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

    Args:
        dist: square distance matrix [n, n], n >= 2 (e.g. :func:`cosine_distance`).
        n_components: dimensions of the embedding.
        seed: random state of sklearn's MDS.

    Example:
        >>> coords, stress = mds_coordinates(cosine_distance(np.eye(3)))  # a triangle
        >>> coords.shape
        (3, 2)
    """
    dist = to_numpy(dist, "distance matrix")
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
