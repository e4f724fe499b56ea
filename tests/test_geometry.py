"""Tests for refusal_atlas.geometry: cosine matrix, clustering, MDS, bootstrap, figures, I/O."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score, silhouette_score

from refusal_atlas import geometry as geo
from refusal_atlas.errors import UserError
from refusal_atlas.paths import shared_data_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

LONG_NAMES = [
    "WildGuard_all", "XSTest_all", "CocoNot_Humanizing", "CocoNot_Incomplete",
    "CocoNot_Indeterminate", "CocoNot_Safety", "CocoNot_Unsupported",
    "SorryBench_HateSpeech_1-5", "SorryBench_CrimesTorts_6-24",
    "SorryBench_Inappropriate_25-39", "SorryBench_Advice_40-44",
]


def planted(n_a: int = 4, n_b: int = 5, d: int = 64, noise: float = 0.25, seed: int = 0):
    """Unit directions in two noisy groups around two orthogonal centres."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(d, 2)))[0].T  # two orthonormal rows
    dirs, truth = {}, []
    for g, count in enumerate((n_a, n_b)):
        for i in range(count):
            v = centres[g] + noise * rng.normal(size=d) / np.sqrt(d)
            dirs[f"group{g}_split{i}"] = (v / np.linalg.norm(v)).astype(np.float32)
            truth.append(g)
    return dirs, truth


def pools_for(signals: dict[str, float], *, d: int = 48, n_hr: int = 120, n_bc: int = 150,
              seed: int = 0, shared_axis: np.ndarray | None = None):
    """HR/BC activation pools; HR = BC-like noise + strength * axis (axis shared if given)."""
    rng = np.random.default_rng(seed)
    pools, dirs = {}, {}
    for name, strength in signals.items():
        axis = shared_axis if shared_axis is not None else rng.normal(size=d)
        axis = axis / np.linalg.norm(axis)
        hr = rng.normal(size=(n_hr, d)) + strength * axis
        bc = rng.normal(size=(n_bc, d))
        pools[name] = (hr, bc)
        diff = hr.mean(0) - bc.mean(0)
        dirs[name] = diff / np.linalg.norm(diff)
    return pools, dirs


# --------------------------------------------------------------------------- cosine matrix


def test_cosine_matrix_matches_direct_computation_and_keeps_order():
    rng = np.random.default_rng(1)
    vecs = {f"s{i}": rng.normal(size=32) * (i + 1) for i in (3, 0, 2, 1)}  # not unit norm
    names, cos = geo.cosine_matrix(vecs)
    assert names == ["s3", "s0", "s2", "s1"]
    m = np.stack(list(vecs.values()))
    direct = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in m] for a in m])
    np.testing.assert_allclose(cos, direct, atol=1e-12)
    assert np.all(np.diag(cos) == 1.0)
    np.testing.assert_array_equal(cos, cos.T)


def test_cosine_matrix_accepts_torch_tensors():
    rng = np.random.default_rng(2)
    arrs = {f"s{i}": rng.normal(size=16).astype(np.float32) for i in range(3)}
    tens = {k: torch.from_numpy(v) for k, v in arrs.items()}
    tens["s2"] = tens["s2"].to(torch.bfloat16)  # mixed dtypes are fine
    _, cos_np = geo.cosine_matrix(arrs)
    _, cos_t = geo.cosine_matrix(tens)
    np.testing.assert_allclose(cos_t, cos_np, atol=1e-2)
    np.testing.assert_allclose(cos_t[:2, :2], cos_np[:2, :2], atol=1e-6)


# --------------------------------------------------------------------------- clustering


def test_planted_clusters_are_recovered_with_high_silhouette():
    dirs, truth = planted()
    result = geo.analyze_geometry(dirs, seed=0)
    assert result.best_k == 2
    for method in geo.LINKAGES:
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


def test_labels_and_silhouette_match_scipy_and_sklearn_directly():
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(9, 20)) + 0.8 * rng.normal(size=(1, 20))
    names = [f"split{i}" for i in range(9)]
    cos = np.corrcoef(vecs)  # a valid cosine-like matrix with spread values
    res = geo.cluster_cosine_matrix(names, cos, ks=(2, 3, 4, 5))
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
    res = geo.analyze_geometry(dirs)
    assert res.clustering.ks == [2, 3]
    assert set(res.clustering.linkages["average"].silhouette) == {2, 3}
    assert res.skipped_reason is None


def test_two_directions_skip_clustering_with_a_reason(tmp_path):
    res = geo.analyze_geometry({"a": np.array([1.0, 0.0, 0.0]), "b": np.array([1.0, 1.0, 0.0])})
    assert res.best_k is None
    assert res.clustering.ks == []
    assert "2 directions" in res.skipped_reason
    assert res.clustering.linkages["average"].labels == {}
    assert res.cosine[0, 1] == pytest.approx(np.sqrt(0.5))
    assert res.mds.shape == (2, 2)
    assert np.linalg.norm(res.mds[0] - res.mds[1]) == pytest.approx(1 - np.sqrt(0.5))
    paths = geo.save_geometry(res, tmp_path)
    assert all(p.exists() for p in paths.values())
    assert geo.load_geometry(tmp_path).skipped_reason == res.skipped_reason


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_strong_split_is_stable_and_noise_split_is_not():
    pools, _ = pools_for({"strong": 10.0}, d=128, n_hr=400, n_bc=400, seed=4)
    rng = np.random.default_rng(5)
    pools["noise"] = (rng.normal(size=(400, 128)), rng.normal(size=(400, 128)))
    boot = geo.bootstrap_stability(pools, n_resamples=60, seed=0)
    assert boot.within("strong") > 0.9
    assert boot.per_split["strong"]["to_full_mean"] > 0.95
    assert abs(boot.within("noise")) < 0.25
    assert boot.per_split["noise"]["within_std"] > boot.per_split["strong"]["within_std"]
    assert boot.per_split["strong"]["hr_sampling"] == "without_replacement"
    # independent splits: cross-split cosine near zero
    assert abs(boot.cross("strong", "noise")) < 0.2
    assert boot.mean_cosine.shape == (2, 2)
    assert boot.k2_match_fraction is None  # k=2 needs >= 3 splits


def test_bootstrap_within_split_cosine_matches_a_direct_loop():
    pools, _ = pools_for({"a": 1.0, "b": 0.5}, d=16, n_hr=40, n_bc=20, seed=6)
    boot = geo.bootstrap_stability(pools, n_resamples=10, n_hr_sample=8, n_bc_sample=32, seed=0)
    # BC pool (20) is smaller than the sample (32): drawn with replacement
    assert boot.per_split["a"]["bc_sampling"] == "with_replacement"
    assert boot.per_split["a"]["hr_sampling"] == "without_replacement"
    assert boot.per_split["a"]["n_hr_pool"] == 40
    kept = geo.bootstrap_stability(pools, n_resamples=10, n_hr_sample=8, n_bc_sample=32,
                                   seed=0, keep_directions=True)
    assert kept.per_split == boot.per_split  # keeping the directions changes nothing
    dirs = kept.directions  # [split, resample, d]
    assert dirs.shape == (2, 10, 16)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0)
    for s, name in enumerate(("a", "b")):
        pairs = [dirs[s, r] @ dirs[s, q] for r in range(10) for q in range(r + 1, 10)]
        assert boot.within(name) == pytest.approx(np.mean(pairs))
        assert boot.per_split[name]["within_std"] == pytest.approx(np.std(pairs))
        hr, bc = pools[name]
        full = hr.mean(0) - bc.mean(0)
        full /= np.linalg.norm(full)
        assert boot.per_split[name]["to_full_mean"] == pytest.approx(np.mean(dirs[s] @ full))
    paired = [dirs[0, r] @ dirs[1, r] for r in range(10)]
    assert boot.cross("a", "b") == pytest.approx(np.mean(paired))
    assert boot.cross_split[0]["std"] == pytest.approx(np.std(paired))
    assert boot.cross("a", "b") == pytest.approx(boot.mean_cosine[0, 1])
    assert "directions" not in boot.to_dict()
    assert boot.cross_split[0]["a"] == "a" and boot.cross_split[0]["b"] == "b"
    assert np.all(np.diag(boot.mean_cosine) == 1.0)


def test_bootstrap_recovers_planted_clustering_every_time():
    rng = np.random.default_rng(7)
    axes = np.linalg.qr(rng.normal(size=(48, 2)))[0].T
    pools, dirs = {}, {}
    for g in range(2):
        p, d = pools_for({f"g{g}_{i}": 5.0 for i in range(3)}, shared_axis=axes[g], seed=10 + g)
        pools.update(p)
        dirs.update(d)
    res = geo.analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=30, seed=1)
    boot = res.bootstrap
    assert boot.k2_match_fraction == 1.0
    assert boot.k2_ari_mean == pytest.approx(1.0)
    assert boot.reference_labels == res.clustering.linkages["average"].labels[2]
    assert boot.cross("g0_0", "g0_1") > 0.7
    assert abs(boot.cross("g0_0", "g1_0")) < 0.3


def test_bootstrap_is_deterministic_and_seed_dependent():
    pools, dirs = pools_for({"a": 1.0, "b": 1.5, "c": 0.5}, seed=8)
    one = geo.analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=3).to_dict()
    two = geo.analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=3).to_dict()
    other = geo.analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=4).to_dict()
    assert json.dumps(one) == json.dumps(two)
    assert one["bootstrap"]["per_split"] != other["bootstrap"]["per_split"]
    # a split's resamples do not depend on the other splits or their order
    alone = geo.bootstrap_stability({"b": pools["b"]}, n_resamples=20, seed=3)
    assert alone.per_split["b"] == one["bootstrap"]["per_split"]["b"]


def test_bootstrap_accepts_torch_and_dict_pools():
    pools, _ = pools_for({"a": 2.0, "b": 2.0}, seed=9)
    as_np = geo.bootstrap_stability(pools, n_resamples=5, seed=0)
    as_torch = geo.bootstrap_stability(
        {k: {"hr": torch.from_numpy(h), "bc": torch.from_numpy(b)} for k, (h, b) in pools.items()},
        n_resamples=5, seed=0)
    np.testing.assert_allclose(as_torch.mean_cosine, as_np.mean_cosine, atol=1e-6)


# --------------------------------------------------------------------------- figures and I/O


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_save_geometry_writes_json_and_readable_figures(tmp_path):
    rng = np.random.default_rng(11)
    base = rng.normal(size=64)
    dirs = {n: base * (i % 2) + rng.normal(size=64) for i, n in enumerate(LONG_NAMES)}
    res = geo.analyze_geometry(dirs)
    paths = geo.save_geometry(res, tmp_path / "geometry")
    assert set(paths) == {"json", "cosine_heatmap", "dendrogram_average", "dendrogram_complete",
                          "mds"}
    for key, filename in geo.FIGURE_FILES.items():
        assert paths[key].name == filename
        w, h = _png_size(paths[key])
        assert w > 400 and h > 250
        assert paths[key].stat().st_size > 15_000
    assert paths["json"].name == "geometry.json"
    assert not list((tmp_path / "geometry").glob(".*.tmp"))  # atomic writes left nothing
    # the heatmap can be drawn for another k and the other linkage
    extra = geo.plot_cosine_heatmap(res, tmp_path / "h3.png", k=3, linkage="complete")
    assert _png_size(extra)[0] > 400
    with pytest.raises(UserError):
        geo.plot_dendrogram(res, tmp_path / "x.png", linkage="ward")


def test_json_round_trip(tmp_path):
    pools, dirs = pools_for({"a": 1.0, "b": 2.0, "c": 0.3, "d": 1.2}, seed=12)
    res = geo.analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=10, seed=0)
    d = res.to_dict()
    text = json.dumps(d)  # JSON-ready without a custom encoder
    back = geo.GeometryResult.from_dict(json.loads(text))
    assert back.to_dict() == json.loads(text)
    np.testing.assert_array_equal(back.cosine, res.cosine)
    np.testing.assert_array_equal(back.clustering.linkages["complete"].linkage,
                                  res.clustering.linkages["complete"].linkage)
    assert back.clustering.linkages["average"].labels == res.clustering.linkages["average"].labels
    assert back.bootstrap.within("a") == res.bootstrap.within("a")
    geo.save_geometry(res, tmp_path)
    loaded = geo.load_geometry(tmp_path)
    assert loaded.to_dict() == json.loads(text)
    assert geo.load_geometry(tmp_path / "geometry.json").best_k == res.best_k


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("dirs, match", [
    ({}, "at least 2"),
    ({"a": np.ones(4)}, "at least 2"),
    ({"a": np.ones(4), "b": np.ones(5)}, "different dimensions"),
    ({"a": np.ones(4), "b": np.zeros(4)}, "zero vector"),
    ({"a": np.ones(4), "b": np.array([1.0, np.nan, 0, 0])}, "NaN"),
    ({"a": np.ones((2, 4)), "b": np.ones((2, 4))}, "vector"),
])
def test_bad_directions_raise_user_error(dirs, match):
    with pytest.raises(UserError, match=match):
        geo.analyze_geometry(dirs)


def test_bad_inputs_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="symmetric"):
        geo.cluster_cosine_matrix(["a", "b", "c"], np.array([[1, .5, 0], [.2, 1, 0], [0, 0, 1]]))
    with pytest.raises(UserError, match="3x3"):
        geo.cluster_cosine_matrix(["a", "b", "c"], np.eye(2))
    with pytest.raises(UserError, match=">= 2"):
        geo.cluster_cosine_matrix(["a", "b", "c"], np.eye(3), ks=(1, 2))
    pools, dirs = pools_for({"a": 1.0, "b": 1.0, "c": 1.0}, seed=13)
    with pytest.raises(UserError, match="missing: c"):
        geo.analyze_geometry(dirs, bootstrap_pools={k: pools[k] for k in ("a", "b")})
    with pytest.raises(UserError, match="d_model"):
        geo.analyze_geometry({k: np.ones(5) + i for i, k in enumerate(dirs)},
                             bootstrap_pools=pools)
    with pytest.raises(UserError, match="identical"):
        same = np.random.default_rng(0).normal(size=(10, 4))
        geo.bootstrap_stability({"a": (same, same)}, n_resamples=3, n_hr_sample=10,
                                n_bc_sample=10)
    with pytest.raises(UserError, match="not found"):
        geo.load_geometry(tmp_path)


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
    res = geo.geometry_from_cosine(names, cos, ks=(2, 3, 4, 5))
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


def test_three_nearly_collinear_directions_get_finite_mds():
    from refusal_atlas.geometry import analyze_geometry

    dirs = {"A": np.array([1.0, 0, 0]), "B": np.array([0.9, 0.1, 0]), "C": np.array([0.88, 0.12, 0])}
    result = analyze_geometry(dirs, n_resamples=5)
    coords = np.asarray(result.mds)
    assert coords.shape == (3, 2) and np.all(np.isfinite(coords))
