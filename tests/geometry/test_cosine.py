"""Tests for refusal_atlas.geometry.cosine: the cosine matrix and direction validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.geometry import analyze_geometry
from refusal_atlas.geometry.cosine import cosine_matrix


def test_cosine_matrix_matches_direct_computation_and_keeps_order():
    rng = np.random.default_rng(1)
    vecs = {f"s{i}": rng.normal(size=32) * (i + 1) for i in (3, 0, 2, 1)}  # not unit norm
    names, cos = cosine_matrix(vecs)
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
    _, cos_np = cosine_matrix(arrs)
    _, cos_t = cosine_matrix(tens)
    np.testing.assert_allclose(cos_t, cos_np, atol=1e-2)
    np.testing.assert_allclose(cos_t[:2, :2], cos_np[:2, :2], atol=1e-6)


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
        analyze_geometry(dirs)

