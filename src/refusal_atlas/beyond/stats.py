"""The statistics every beyond-the-paper finding uses: a rate with its count and bootstrap
CI over prompts, permutation p-values for "these two rates differ" and "these two
categorical distributions differ" (total-variation distance)."""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np


def bootstrap_rate(outcomes: Sequence[bool], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """A rate with its count and a percentile bootstrap 95% CI over the outcomes.

    Example:
        >>> r = bootstrap_rate([True, True, False, False], n_boot=200)
        >>> r["rate"], r["k"], r["n"]
        (0.5, 2, 4)
    """
    x = np.asarray(outcomes, dtype=float)
    n = len(x)
    if n == 0:
        return {"rate": None, "k": 0, "n": 0, "ci95": [None, None]}
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"rate": float(x.mean()), "k": int(x.sum()), "n": n, "ci95": [float(lo), float(hi)]}


def permutation_p_rates(a: Sequence[bool], b: Sequence[bool], *, paired: bool = False,
                        n_perm: int = 1000, seed: int = 0) -> float:
    """Two-sided permutation p-value that rates ``a`` and ``b`` differ.

    ``paired``: ``a[i]`` and ``b[i]`` are the same prompt under two conditions, so the
    null swaps within each pair; otherwise the outcomes are pooled and relabelled.
    p = (1 + #null |diff| >= observed) / (1 + n_perm).

    Example:
        >>> permutation_p_rates([1] * 20, [0] * 20, n_perm=200) < 0.01
        True
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    observed = abs(x.mean() - y.mean())
    rng = np.random.default_rng(seed)
    if paired:
        if len(x) != len(y):
            raise ValueError("paired outcomes need the same length")
        swap = rng.random((n_perm, len(x))) < 0.5
        xa = np.where(swap, y, x)
        ya = np.where(swap, x, y)
        null = np.abs(xa.mean(axis=1) - ya.mean(axis=1))
    else:
        pooled = np.concatenate([x, y])
        null = np.empty(n_perm)
        for i in range(n_perm):
            perm = rng.permutation(pooled)
            null[i] = abs(perm[:len(x)].mean() - perm[len(x):].mean())
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm))


def total_variation(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Total-variation distance between the empirical distributions of two label lists.

    Example:
        >>> total_variation(["x", "x", "y", "y"], ["x", "y", "y", "y"])
        0.25
    """
    if not a or not b:
        return None
    ca, cb = Counter(a), Counter(b)
    return 0.5 * sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in set(ca) | set(cb))


def permutation_p_tv(a: Sequence[Hashable], b: Sequence[Hashable], *, n_perm: int = 1000,
                     seed: int = 0) -> float | None:
    """Permutation p-value that two label lists come from different distributions (total
    variation as the statistic; labels pooled and relabelled)."""
    observed = total_variation(a, b)
    if observed is None:
        return None
    pooled = list(a) + list(b)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        idx = rng.permutation(len(pooled))
        pa = [pooled[i] for i in idx[:len(a)]]
        pb = [pooled[i] for i in idx[len(a):]]
        hits += total_variation(pa, pb) >= observed - 1e-12
    return float((1 + hits) / (1 + n_perm))
