"""How alike two models' refusal geometries are: cosine matrices aligned on one split order
and the correlation of their off-diagonal cosines, with a permutation p-value (a Mantel
test)."""

from __future__ import annotations

import math
from itertools import permutations
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["DEFINITION", "MIN_COMMON_SPLITS", "align_matrix", "cosine_correlation", "split_order"]

MIN_COMMON_SPLITS = 3
"""A correlation needs at least three off-diagonal pairs: three splits both models have."""

EXACT_LIMIT = 5040
"""Up to this many label orders (7 common splits) every order is tried: an exact p-value."""

DEFINITION = (
    "r is the Pearson correlation between the two models' cosines of the same pairs of splits "
    "(upper triangle of each cosine matrix, over the splits both models have). p is one-sided "
    "(is r higher than if the split labels of one model carried no meaning?): the split labels "
    "of the second matrix are permuted (rows and columns together) and r recomputed; p = the "
    "share of label orders whose r is at least the observed one, the observed order included. "
    f"With up to {math.factorial(7)} orders (7 common splits) every order is tried (exact p), "
    "beyond that a seeded random sample of orders (p = (1 + hits) / (1 + n_perm)). The smallest "
    "possible p with n common splits is 1 / n!, so 3 splits can never give p < 0.17.")


def split_order(name_lists: Sequence[Sequence[str]]) -> list[str]:
    """Every split of every model once, in first-seen order (the first model's order, then
    what later models add).

    Args:
        name_lists: each model's split names, in that model's order.

    Example:
        >>> split_order([["a", "b"], ["b", "c"]])
        ['a', 'b', 'c']
    """
    seen: dict[str, None] = {}
    for names in name_lists:
        for n in names:
            seen.setdefault(str(n), None)
    return list(seen)


def align_matrix(names: Sequence[str], cosine: Sequence[Sequence[Any]],
                 order: Sequence[str]) -> np.ndarray:
    """A model's cosine matrix re-indexed to ``order``; NaN for a split the model lacks.

    Args:
        names: the model's split names (rows / columns of ``cosine``).
        cosine: the model's square cosine matrix.
        order: the common split order (:func:`split_order`).

    Example:
        >>> align_matrix(["b", "a"], [[1, .5], [.5, 1]], ["a", "b", "c"])[0].tolist()
        [1.0, 0.5, nan]
    """
    index = {str(n): i for i, n in enumerate(names)}
    raw = np.asarray(cosine, dtype=float) if len(names) else np.zeros((0, 0))
    out = np.full((len(order), len(order)), np.nan)
    for a, na in enumerate(order):
        for b, nb in enumerate(order):
            if na in index and nb in index:
                out[a, b] = raw[index[na], index[nb]]
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    return None if den <= 1e-12 else float(x @ y) / den


def cosine_correlation(a: Mapping[str, Any], b: Mapping[str, Any], *, n_perm: int = 2000,
                       seed: int = 0) -> dict:
    """Correlation of two models' off-diagonal cosines over the splits both have, with a
    one-sided permutation p-value (split labels of ``b`` permuted; see :data:`DEFINITION`).

    Args:
        a: ``{"names": [...], "cosine": [[...]]}`` of the first model.
        b: the same for the second model.
        n_perm: random label orders when there are too many to try them all.
        seed: seed of those random orders (the result is deterministic given it).

    Returns:
        ``{r, p_value, n_splits, n_pairs, common, exact, n_perm, reason, definition}``;
        ``r`` and ``p_value`` are None with a ``reason`` when fewer than
        :data:`MIN_COMMON_SPLITS` splits are shared or a model's cosines do not vary.

    Example:
        >>> m = {"names": ["a", "b", "c"], "cosine": [[1, .9, .1], [.9, 1, .2], [.1, .2, 1]]}
        >>> cosine_correlation(m, m)["r"]
        1.0
    """
    names_b = {str(n) for n in b.get("names") or []}
    common = [str(n) for n in a.get("names") or [] if str(n) in names_b]
    n = len(common)
    out: dict[str, Any] = {"r": None, "p_value": None, "n_splits": n,
                           "n_pairs": n * (n - 1) // 2, "common": common, "exact": None,
                           "n_perm": 0, "reason": None, "definition": DEFINITION}
    if n < MIN_COMMON_SPLITS:
        out["reason"] = (f"a correlation needs at least {MIN_COMMON_SPLITS} splits both models "
                         f"have; they share {n}")
        return out
    ma = align_matrix(a["names"], a["cosine"], common)
    mb = align_matrix(b["names"], b["cosine"], common)
    iu = np.triu_indices(n, k=1)
    x = ma[iu]
    r = _pearson(x, mb[iu])
    if r is None or not np.all(np.isfinite(x)) or not np.all(np.isfinite(mb[iu])):
        out["reason"] = "a model's off-diagonal cosines do not vary (or are not numbers)"
        return out
    exact = math.factorial(n) <= EXACT_LIMIT
    if exact:
        orders = [np.array(p) for p in permutations(range(n))]
    else:
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(n) for _ in range(n_perm)]
    hits = 0
    for p in orders:
        rp = _pearson(x, mb[np.ix_(p, p)][iu])
        hits += int(rp is not None and rp >= r - 1e-12)
    # exact: the identity is one of the orders; sampled: count the observed order once more
    p_value = hits / len(orders) if exact else (1 + hits) / (1 + len(orders))
    out.update(r=r, p_value=p_value, exact=exact, n_perm=len(orders))
    return out
