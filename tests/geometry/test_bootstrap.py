"""Tests for refusal_atlas.geometry.bootstrap: stability of resampled directions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.geometry import analyze_geometry
from refusal_atlas.geometry.bootstrap import bootstrap_stability

from .conftest import pools_for


def test_bootstrap_strong_split_is_stable_and_noise_split_is_not():
    pools, _ = pools_for({"strong": 10.0}, d=128, n_hr=400, n_bc=400, seed=4)
    rng = np.random.default_rng(5)
    pools["noise"] = (rng.normal(size=(400, 128)), rng.normal(size=(400, 128)))
    boot = bootstrap_stability(pools, n_resamples=60, seed=0)
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
    boot = bootstrap_stability(pools, n_resamples=10, n_hr_sample=8, n_bc_sample=32, seed=0)
    # BC pool (20) is smaller than the sample (32): drawn with replacement
    assert boot.per_split["a"]["bc_sampling"] == "with_replacement"
    assert boot.per_split["a"]["hr_sampling"] == "without_replacement"
    assert boot.per_split["a"]["n_hr_pool"] == 40
    kept = bootstrap_stability(pools, n_resamples=10, n_hr_sample=8, n_bc_sample=32,
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
    res = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=30, seed=1)
    boot = res.bootstrap
    assert boot.k2_match_fraction == 1.0
    assert boot.k2_ari_mean == pytest.approx(1.0)
    assert boot.reference_labels == res.clustering.linkages["average"].labels[2]
    assert boot.cross("g0_0", "g0_1") > 0.7
    assert abs(boot.cross("g0_0", "g1_0")) < 0.3


def test_bootstrap_is_deterministic_and_seed_dependent():
    pools, dirs = pools_for({"a": 1.0, "b": 1.5, "c": 0.5}, seed=8)
    one = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=3).to_dict()
    two = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=3).to_dict()
    other = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=20, seed=4).to_dict()
    assert json.dumps(one) == json.dumps(two)
    assert one["bootstrap"]["per_split"] != other["bootstrap"]["per_split"]
    # a split's resamples do not depend on the other splits or their order
    alone = bootstrap_stability({"b": pools["b"]}, n_resamples=20, seed=3)
    assert alone.per_split["b"] == one["bootstrap"]["per_split"]["b"]


def test_bootstrap_accepts_torch_and_dict_pools():
    pools, _ = pools_for({"a": 2.0, "b": 2.0}, seed=9)
    as_np = bootstrap_stability(pools, n_resamples=5, seed=0)
    as_torch = bootstrap_stability(
        {k: {"hr": torch.from_numpy(h), "bc": torch.from_numpy(b)} for k, (h, b) in pools.items()},
        n_resamples=5, seed=0)
    np.testing.assert_allclose(as_torch.mean_cosine, as_np.mean_cosine, atol=1e-6)


def test_identical_hr_and_bc_raise_user_error():
    with pytest.raises(UserError, match="identical"):
        same = np.random.default_rng(0).normal(size=(10, 4))
        bootstrap_stability({"a": (same, same)}, n_resamples=3, n_hr_sample=10,
                            n_bc_sample=10)
