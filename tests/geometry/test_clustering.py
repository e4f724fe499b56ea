"""Tests for refusal_atlas.geometry.clustering: linkage, labels, silhouette, best k."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score, silhouette_score

from refusal_atlas.errors import UserError
from refusal_atlas.geometry import analyze_geometry
from refusal_atlas.geometry.clustering import cluster_cosine_matrix

from .conftest import planted


def test_labels_and_silhouette_match_scipy_and_sklearn_directly():
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(9, 20)) + 0.8 * rng.normal(size=(1, 20))
    names = [f"split{i}" for i in range(9)]
    cos = np.corrcoef(vecs)  # a valid cosine-like matrix with spread values
    res = cluster_cosine_matrix(names, cos, ks=(2, 3, 4, 5))
    dist = np.clip(1 - cos, 0, None)
    np.fill_diagonal(dist, 0)
    for method in ("average", "complete"):
        z = hierarchy.linkage(squareform(dist, checks=False), method=method)
        lk = res.linkages[method]
        assert sorted(lk.leaf_order) == list(range(9))
        for k in (2, 3, 4, 5):
            ref = hierarchy.fcluster(z, t=k, criterion="maxclust")
            assert adjusted_rand_score(ref, lk.labels[k]) == 1.0
            assert lk.silhouette[k] == pytest.approx(
                silhouette_score(dist, ref, metric="precomputed"), abs=1e-12)
            # labels are numbered 0.. along the leaf order, so blocks are contiguous
            along = [lk.labels[k][i] for i in lk.leaf_order]
            assert along == sorted(along)
        best = max(lk.silhouette, key=lambda k: (lk.silhouette[k], -k))
        assert lk.best_k == best
        assert lk.linkage.shape == (8, 4)


def test_only_k_below_n_splits_is_evaluated():
    dirs, _ = planted(n_a=2, n_b=2)
    res = analyze_geometry(dirs)
    assert res.clustering.ks == [2, 3]
    assert set(res.clustering.linkages["average"].silhouette) == {2, 3}
    assert res.skipped_reason is None


def test_bad_cosine_matrix_raises_user_error():
    with pytest.raises(UserError, match="symmetric"):
        cluster_cosine_matrix(["a", "b", "c"], np.array([[1, .5, 0], [.2, 1, 0], [0, 0, 1]]))
    with pytest.raises(UserError, match="3x3"):
        cluster_cosine_matrix(["a", "b", "c"], np.eye(2))
    with pytest.raises(UserError, match=">= 2"):
        cluster_cosine_matrix(["a", "b", "c"], np.eye(3), ks=(1, 2))
