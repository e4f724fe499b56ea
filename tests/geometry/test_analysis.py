"""Tests for refusal_atlas.geometry.analysis: the whole analysis, and the paper's matrix."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from refusal_atlas.errors import UserError
from refusal_atlas.geometry.analysis import analyze_geometry, geometry_from_cosine
from refusal_atlas.geometry.clustering import LINKAGES
from refusal_atlas.geometry.io import load_geometry, save_geometry
from refusal_atlas.paths import shared_data_dir

from .conftest import planted, pools_for


def test_planted_clusters_are_recovered_with_high_silhouette():
    dirs, truth = planted()
    result = analyze_geometry(dirs, seed=0)
    assert result.best_k == 2
    for method in LINKAGES:
        lk = result.clustering.linkages[method]
        assert adjusted_rand_score(truth, lk.labels[2]) == 1.0
        assert lk.silhouette[2] > 0.8
        assert lk.best_k == 2
        # k=2 beats every finer cut on such data
        assert all(lk.silhouette[2] > s for k, s in lk.silhouette.items() if k != 2)
    # MDS keeps the groups apart: every within-group distance < every between-group one
    truth = np.array(truth)
    dist = np.linalg.norm(result.mds[:, None] - result.mds[None], axis=-1)
    same = truth[:, None] == truth[None]
    off = ~np.eye(len(truth), dtype=bool)
    assert dist[same & off].max() < dist[~same].min()
    assert result.mds.shape == (len(truth), 2)
    assert 0 <= result.mds_stress < 0.2
    # summary statistics
    cos = result.cosine
    iu = np.triu_indices(len(truth), 1)
    assert result.summary["min_offdiag_cosine"] == pytest.approx(cos[iu].min())
    assert result.summary["max_offdiag_cosine"] == pytest.approx(cos[iu].max())
    assert result.summary["mean_offdiag_cosine"] == pytest.approx(cos[iu].mean())
    assert sorted(len(c) for c in result.summary["clusters"]) == [4, 5]


def test_two_directions_skip_clustering_with_a_reason(tmp_path):
    res = analyze_geometry({"a": np.array([1.0, 0.0, 0.0]), "b": np.array([1.0, 1.0, 0.0])})
    assert res.best_k is None
    assert res.clustering.ks == []
    assert "2 directions" in res.skipped_reason
    assert res.clustering.linkages["average"].labels == {}
    assert res.cosine[0, 1] == pytest.approx(np.sqrt(0.5))
    assert res.mds.shape == (2, 2)
    assert np.linalg.norm(res.mds[0] - res.mds[1]) == pytest.approx(1 - np.sqrt(0.5))
    paths = save_geometry(res, tmp_path)
    assert all(p.exists() for p in paths.values())
    assert load_geometry(tmp_path).skipped_reason == res.skipped_reason


def test_bad_bootstrap_pools_raise_user_error():
    pools, dirs = pools_for({"a": 1.0, "b": 1.0, "c": 1.0}, seed=13)
    with pytest.raises(UserError, match="missing: c"):
        analyze_geometry(dirs, bootstrap_pools={k: pools[k] for k in ("a", "b")})
    with pytest.raises(UserError, match="d_model"):
        analyze_geometry({k: np.ones(5) + i for i, k in enumerate(dirs)},
                         bootstrap_pools=pools)


# --------------------------------------------------------------------------- the paper's matrix


def _paper_clustering_dir():
    root = shared_data_dir()
    if root is None:
        pytest.skip("shared data dir not found (set REFUSAL_ATLAS_SHARED_DATA)")
    folder = root / "paper" / "results" / "clustering"
    if not (folder / "table1_reordered.tex").exists():
        pytest.skip(f"{folder}/table1_reordered.tex not in the shared data")
    return folder


def parse_table1(text: str) -> tuple[list[str], np.ndarray]:
    names, rows = [], []
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Z]{2}-[A-Za-z]+)\s*&(.*)\\\\\s*$", line)
        if m:
            names.append(m.group(1))
            rows.append([float(v) for v in re.findall(r"\}\s*(-?\d+\.\d+)", m.group(2))])
    return names, np.array(rows)


def parse_silhouettes(text: str) -> dict[str, dict[int, float]]:
    header = re.search(r"^\s*linkage\s+((?:n=\d+\s*)+)$", text, re.MULTILINE)
    ks = [int(k) for k in re.findall(r"n=(\d+)", header.group(1))]
    out = {}
    for method in ("average", "complete"):
        m = re.search(rf"^\s*{method}\s+((?:[+-]\d\.\d+\s*)+)$", text, re.MULTILINE)
        out[method] = dict(zip(ks, (float(v) for v in m.group(1).split())))
    return out


def test_paper_table1_clusters_and_silhouettes():
    folder = _paper_clustering_dir()
    names, cos = parse_table1((folder / "table1_reordered.tex").read_text())
    assert cos.shape == (11, 11)
    np.testing.assert_array_equal(cos, cos.T)
    res = geometry_from_cosine(names, cos, ks=(2, 3, 4, 5))
    avg = res.clustering.linkages["average"]
    capability = {"CN-Humanizing", "CN-Incomplete", "CN-Indeterminate", "CN-Unsupported"}
    groups = [set(c) for c in res.clustering.clusters(2, "average")]
    assert capability in groups and set(names) - capability in groups
    assert res.best_k == 2
    assert 0.40 < avg.silhouette[2] < 0.50
    assert res.summary["min_offdiag_cosine"] == pytest.approx(-0.062)
    assert res.summary["max_offdiag_cosine"] == pytest.approx(0.917)
    # the paper's reported within/between-cluster cosines (findings: 0.645, 0.706, 0.418)
    assert sorted(res.summary["within_cluster_mean_cosine"]) == pytest.approx(
        [0.645, 0.706], abs=6e-4)
    assert res.summary["between_cluster_mean_cosine"] == pytest.approx(0.418, abs=6e-4)
    stats = folder / "table1_cluster_stats.txt"
    if stats.exists():
        paper = parse_silhouettes(stats.read_text())
        for method in ("average", "complete"):
            for k, value in res.clustering.linkages[method].silhouette.items():
                assert value == pytest.approx(paper[method][k], abs=6e-4), (method, k)

