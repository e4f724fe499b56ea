"""Experiment 2: PCA of the directions, the subspaces to ablate, rates and the verdict,
each against a direct calculation."""

import numpy as np
import pytest

from refusal_atlas.beyond.subspace import (
    SPAN,
    find_smallest_k,
    outcomes,
    principal_components,
    subspace_findings,
    subspace_rates,
    subspace_vectors,
)


def _unit_rows(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)) + 2.0  # a shared component
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pca_against_numpy_svd():
    x = _unit_rows(6, 16, 0)
    p = principal_components(x)
    s = np.linalg.svd(x, compute_uv=False)
    np.testing.assert_allclose(p["variance_explained"], s ** 2 / (s ** 2).sum(), atol=1e-12)
    np.testing.assert_allclose(p["cumulative"][-1], 1.0)
    c = p["components"]
    np.testing.assert_allclose(c @ c.T, np.eye(6), atol=1e-10)
    assert p["rank"] == 6 and (c @ x.mean(0) >= 0).all()
    # PC1 of directions with a large shared part is close to their (unit) mean
    mean = x.mean(0) / np.linalg.norm(x.mean(0))
    assert abs(c[0] @ mean) > 0.95
    # rank-deficient input: two identical rows
    assert principal_components(np.stack([x[0], x[0], x[1]]))["rank"] == 2


def test_subspace_vectors_span_the_top_components():
    x = _unit_rows(7, 16, 1)
    p = principal_components(x)
    vectors, ks = subspace_vectors(p["components"], p["rank"], layer=3, max_k=5)
    assert ks == {"subspace_k1": 1, "subspace_k2": 2, "subspace_k3": 3, "subspace_k4": 4,
                  "subspace_k5": 5, SPAN: 7}
    for name, k in ks.items():
        q = vectors[name].basis.double().numpy()
        top = p["components"][:k]
        # same span: the projector onto q equals the projector onto the top-k components
        np.testing.assert_allclose(q.T @ q, top.T @ top, atol=1e-5)
        assert vectors[name].layer == 3
    # the span is not repeated when the top max_k components already are all of it
    _, ks = subspace_vectors(p["components"][:3], 3, 0, max_k=5)
    assert list(ks.values()) == [1, 2, 3]


def _rows(condition, harmful_refused, benign_refused):
    rows = [{"condition": condition, "prompt_id": f"h{i}", "harmful": True, "refused": r}
            for i, r in enumerate(harmful_refused)]
    return rows + [{"condition": condition, "prompt_id": f"b{i}", "harmful": False,
                    "refused": r} for i, r in enumerate(benign_refused)]


def test_rates_against_direct_counts():
    rows = (_rows("baseline", [1, 1, 1, 1, 0, 1], [0, 1, 0, 0])
            + _rows("ablate/subspace_k1", [1, 0, 1, None, 0, 1], [0, 0, 0, 0]))
    h, b = outcomes(rows, "ablate/subspace_k1")
    assert h == [True, False, True, False, True] and b == [False] * 4
    r = subspace_rates(rows, ["baseline", "ablate/subspace_k1"], n_boot=200, n_perm=200)
    assert (r["baseline"]["rr"]["k"], r["baseline"]["rr"]["n"]) == (5, 6)
    assert r["baseline"]["orr"]["rate"] == 0.25
    assert r["ablate/subspace_k1"]["rr"]["rate"] == pytest.approx(3 / 5)
    lo, hi = r["ablate/subspace_k1"]["rr"]["ci95"]
    assert lo <= 0.6 <= hi
    # a parse error drops a prompt, so the pairing with the baseline is not attempted
    assert "p_rr_vs_baseline" not in r["ablate/subspace_k1"]


def _verdict(k_rr, single_rr, base=(1,) * 8):
    rows = _rows("baseline", list(base), [0] * 4)
    ks = {}
    for k, n_refused in enumerate(k_rr, start=1):
        ks[f"subspace_k{k}"] = k
        rows += _rows(f"ablate/subspace_k{k}", [1] * n_refused + [0] * (8 - n_refused), [0] * 4)
    single = {}
    for s, n_refused in single_rr.items():
        single[s] = f"ablate/{s}"
        rows += _rows(f"ablate/{s}", [1] * n_refused + [0] * (8 - n_refused), [0] * 4)
    conds = ["baseline", *(f"ablate/{n}" for n in ks), *single.values()]
    rates = subspace_rates(rows, conds, n_boot=100, n_perm=100)
    pca = principal_components(_unit_rows(3, 8, 2))
    return subspace_findings(pca, rates, ks, single)


def test_verdicts():
    dim, ab = _verdict([6, 3, 1], {"A": 7, "B": 6})      # baseline RR 1.0: half is 0.5
    assert ab.verdict == "k = 2" and ab.supported is True and ab.details["k_min"] == 2
    assert "RR 1.00 (8/8" in ab.measured and "k=2: RR 0.38 (3/8" in ab.measured
    assert dim.subject == "PCA" and dim.supported is None
    _, ab = _verdict([3], {"A": 7})
    assert ab.verdict == "k = 1" and ab.supported is False
    _, ab = _verdict([6, 3], {"A": 2})
    assert ab.supported is False and "single directions already halve RR (A)" in ab.verdict
    _, ab = _verdict([7, 6], {"A": 7})
    assert ab.verdict.startswith("none") and ab.supported is False
    _, ab = _verdict([0], {}, base=(0,) * 8)
    assert ab.supported is None and "not decidable" in ab.verdict
    assert find_smallest_k({"ablate/a": {"rr": {"rate": 0.2}}}, {"a": 1}, 0.4) is None
