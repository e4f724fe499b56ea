"""Experiment 4: directions per layer, correlation with the chosen layer's cosines, ARI,
the verdict; each against a direct calculation."""

import numpy as np
import torch

from refusal_atlas.beyond.layer_robustness import (
    compare_layers,
    directions_by_layer,
    layer_window,
    robustness_findings,
)


def test_layer_window_clips():
    assert layer_window(5, 4, 24) == list(range(1, 10))
    assert layer_window(22, 4, 24) == list(range(18, 25))


def _clustered(d=12, seed=0, noise=0.05, swap=False):
    """Four splits in two clear clusters {a, b}, {c, d} (or {a, c}, {b, d} with swap)."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=d), rng.normal(size=d)
    members = {"a": u, "b": v if swap else u, "c": u if swap else v, "d": v}
    return {n: c + noise * rng.normal(size=d) for n, c in members.items()}


def test_directions_by_layer_is_difference_in_means():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(10, 3, 6, generator=g)
    acts[:, 0] = 1.0                        # layer 0: every prompt the same -> no direction
    pools = {"x": ([0, 1, 2], [5, 6]), "y": ([3, 4], [7, 8, 9])}
    dirs = directions_by_layer(acts, [0, 4, 7], pools)
    assert isinstance(dirs[0], str) and "identical means" in dirs[0]
    for li, layer in ((1, 4), (2, 7)):
        for name, (hr, bc) in pools.items():
            diff = acts[hr, li].double().mean(0) - acts[bc, li].double().mean(0)
            np.testing.assert_allclose(dirs[layer][name], (diff / diff.norm()).numpy(),
                                       atol=1e-6)


def test_compare_layers_against_direct_correlation_and_ari():
    from sklearn.metrics import adjusted_rand_score

    same = _clustered(seed=0)
    near = {n: v + 0.02 * np.random.default_rng(1).normal(size=v.shape) for n, v in same.items()}
    other = _clustered(seed=2, swap=True)
    dirs = {3: same, 4: near, 5: other, 6: "no direction at layer 6: x"}
    rows = {r["layer"]: r for r in compare_layers(dirs, 3, 2, n_perm=100)}
    assert rows[3]["r"] == 1.0 and rows[3]["ari"] == 1.0          # identical clusters: 1
    # Pearson correlation of the off-diagonal cosines, by hand
    def cos(m):
        x = np.stack([m[n] / np.linalg.norm(m[n]) for n in "abcd"])
        return (x @ x.T)[np.triu_indices(4, 1)]
    np.testing.assert_allclose(rows[5]["r"], np.corrcoef(cos(same), cos(other))[0, 1],
                               atol=1e-9)
    assert rows[4]["ari"] == 1.0 and rows[4]["r"] > 0.95
    assert rows[5]["ari"] == adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1])
    assert rows[5]["ari"] < 0.5
    # 4 splits: all 24 label orders are tried, so p is exact (identity included)
    assert rows[3]["p_value"] >= 1 / 24
    assert rows[6]["r"] is None and rows[6]["reason"].startswith("no direction")


def test_verdicts():
    dirs = {2: _clustered(seed=3), 3: _clustered(seed=0), 4: _clustered(seed=0, noise=0.06),
            5: _clustered(seed=0, swap=True)}
    rows = compare_layers(dirs, 3, 2, n_perm=100)
    f = robustness_findings(rows, 3, 2, within=1)[0]
    # L2 (another random pair of centres) has the same cluster structure {a,b},{c,d}
    assert f.details["within"] == 1 and "L2:" in f.measured and "L5:" in f.measured
    assert f.verdict == "robust" and f.supported is True
    f = robustness_findings(rows, 3, 2, within=2)[0]
    assert f.verdict == "not robust: fails at L5" and f.supported is False
    f = robustness_findings(rows, 3, None, within=1)[0]
    assert f.supported is None and f.verdict.startswith("not decidable")
