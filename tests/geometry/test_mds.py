"""Tests for refusal_atlas.geometry.mds: the 2-D embedding of the directions."""

from __future__ import annotations

import numpy as np

from refusal_atlas.geometry import analyze_geometry


def test_three_nearly_collinear_directions_get_finite_mds():
    dirs = {"A": np.array([1.0, 0, 0]), "B": np.array([0.9, 0.1, 0]),
            "C": np.array([0.88, 0.12, 0])}
    result = analyze_geometry(dirs, n_resamples=5)
    coords = np.asarray(result.mds)
    assert coords.shape == (3, 2) and np.all(np.isfinite(coords))
