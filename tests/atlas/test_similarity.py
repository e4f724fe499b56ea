"""Aligning splits and comparing two models' cosine matrices (no runs needed)."""

import math

import numpy as np
import pytest

from refusal_atlas.atlas import align_matrix, cosine_correlation, split_order


def _model(names, seed=0, noise=0.0, base=None):
    """Unit directions in 16-d: ``base`` (a seed) shared with another model, plus noise."""
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(base).normal(size=(len(names), 16)) if base is not None else \
        rng.normal(size=(len(names), 16))
    v = v + noise * rng.normal(size=v.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return {"names": list(names), "cosine": (v @ v.T).tolist()}


def test_split_order_is_first_seen():
    assert split_order([["b", "a"], ["a", "c"], ["d", "b"]]) == ["b", "a", "c", "d"]


def test_align_matrix_reorders_and_marks_missing_splits_nan():
    m = align_matrix(["b", "a"], [[1.0, 0.3], [0.3, 1.0]], ["a", "b", "c"])
    assert m[0, 1] == 0.3 and m[1, 1] == 1.0
    assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all()


def test_same_geometry_gives_r_one_and_the_exact_smallest_p():
    a = _model("ABC")
    out = cosine_correlation(a, a)
    assert out["r"] == pytest.approx(1.0)
    assert out["exact"] and out["n_perm"] == 6 and out["n_pairs"] == 3
    # three distinct cosines: only the identity reaches r = 1, so p = 1 / 3!
    assert out["p_value"] == pytest.approx(1 / 6)


def test_correlation_uses_the_shared_splits_in_either_order():
    a = _model("ABCDE", base=1, seed=2, noise=0.05)
    b = _model("ABCDE", base=1, seed=3, noise=0.05)
    shuffled = {"names": list("EDCBA"), "cosine": align_matrix(b["names"], b["cosine"],
                                                                list("EDCBA")).tolist()}
    one, two = cosine_correlation(a, b), cosine_correlation(a, shuffled)
    assert one["r"] == pytest.approx(two["r"]) and one["r"] > 0.9
    assert one["p_value"] == pytest.approx(two["p_value"])
    assert one["exact"] and one["n_perm"] == math.factorial(5)
    assert one["p_value"] < 0.05


def test_extra_splits_of_one_model_are_left_out():
    a = _model("ABCD", base=1)
    b = _model("ABCDXY", base=1)  # X, Y: only in b
    b_common = {"names": list("ABCD"),
                "cosine": align_matrix(b["names"], b["cosine"], list("ABCD")).tolist()}
    out = cosine_correlation(a, b)
    assert out["common"] == list("ABCD")
    assert out["r"] == pytest.approx(cosine_correlation(a, b_common)["r"])


def test_sampled_permutations_are_deterministic_given_the_seed():
    names = [f"s{i}" for i in range(9)]  # 9! orders: sampled, not enumerated
    a, b = _model(names, seed=1), _model(names, seed=2)
    first = cosine_correlation(a, b, n_perm=300, seed=7)
    again = cosine_correlation(a, b, n_perm=300, seed=7)
    other = cosine_correlation(a, b, n_perm=300, seed=8)
    assert not first["exact"] and first["n_perm"] == 300
    assert first == again
    assert first["r"] == other["r"]
    hits = first["p_value"] * 301 - 1  # p = (1 + hits) / (1 + n_perm)
    assert hits == pytest.approx(round(hits)) and 0 <= round(hits) <= 300


def test_unrelated_geometries_are_not_significant():
    names = [f"s{i}" for i in range(8)]
    out = cosine_correlation(_model(names, seed=11), _model(names, seed=12), n_perm=500)
    assert out["p_value"] > 0.05


@pytest.mark.parametrize("b, reason", [
    (_model("ABX"), "share 2"),
    ({"names": list("ABC"), "cosine": [[1, .5, .5], [.5, 1, .5], [.5, .5, 1]]}, "do not vary"),
])
def test_no_correlation_says_why(b, reason):
    out = cosine_correlation(_model("ABC"), b)
    assert out["r"] is None and out["p_value"] is None
    assert reason in out["reason"]
