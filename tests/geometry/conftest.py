"""Synthetic directions and activation pools shared by the geometry tests."""

from __future__ import annotations

import numpy as np


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

