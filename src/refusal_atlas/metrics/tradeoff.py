"""The trade-off gap: how much the directions' RR-ORR curves differ (the 'one knob' number).

See :data:`GAP_DEFINITION`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

from .dose_response import curves

__all__ = ["GAP_DEFINITION", "interpolate", "max_gap", "orr_of_rr", "pair_gap", "tradeoff_gap"]

GAP_DEFINITION = (
    "Each direction's curve is its (RR, ORR) points over alpha (the baseline is the alpha = 0 "
    "point). Points are ordered by RR (points with equal RR are merged to their mean ORR), which "
    "makes ORR a piecewise-linear function of RR on [min RR, max RR] of that curve; a curve whose "
    "RR is not monotone in alpha is flagged 'non_monotone' but still used this way. For each pair "
    "of curves, gap = max over RR in the overlap of their RR ranges of |ORR_a(RR) - ORR_b(RR)| "
    "(exact: evaluated at every breakpoint of both curves inside the overlap and at its ends); "
    "mean_abs_gap = the mean of |ORR_a - ORR_b| over the overlap (trapezoid rule on 201 points; "
    "= gap when the overlap is a single point). Pairs whose RR ranges do not overlap get no gap "
    "and are listed. 'value' is the largest pair gap (with its pair and RR), 'mean_over_pairs' "
    "the mean of the pair gaps. 0 means every direction buys the same ORR for the same RR: one "
    "knob."
)


def orr_of_rr(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Points (rr, orr) -> strictly increasing rr knots with mean orr at equal rr.

    Args:
        points: a curve's (rr, orr) points, in any order.
    """
    merged: "OrderedDict[float, list[float]]" = OrderedDict()
    for rr, orr in sorted(points):
        merged.setdefault(rr, []).append(orr)
    xs = list(merged)
    ys = [sum(v) / len(v) for v in merged.values()]
    return xs, ys


def interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear value at ``x`` of the knots (xs, ys), constant beyond the ends.

    Args:
        x: where to evaluate.
        xs: strictly increasing knots (as :func:`orr_of_rr` returns).
        ys: values at the knots.
    """
    if len(xs) == 1 or x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    lo, hi = 0, len(xs) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xs[mid] <= x:
            lo = mid
        else:
            hi = mid
    t = (x - xs[lo]) / (xs[hi] - xs[lo])
    return ys[lo] + t * (ys[hi] - ys[lo])


def _monotone(values: Sequence[float]) -> bool:
    inc = all(b >= a for a, b in zip(values, values[1:]))
    dec = all(b <= a for a, b in zip(values, values[1:]))
    return inc or dec


def max_gap(xa: Sequence[float], ya: Sequence[float], xb: Sequence[float],
            yb: Sequence[float]) -> tuple[float, float, float, float] | None:
    """Largest |ORR_a - ORR_b| over the overlap of two curves' RR ranges.

    Exact: evaluated at the overlap's ends and at every knot of either curve inside it;
    ties go to the smaller RR.

    Args:
        xa, ya: curve a's knots, as :func:`orr_of_rr` returns them.
        xb, yb: curve b's knots.

    Returns:
        (gap, RR where it is largest, overlap start, overlap end), or None when the RR
        ranges do not overlap.
    """
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi < lo - 1e-12:
        return None
    hi = max(hi, lo)
    grid = sorted({lo, hi, *(x for x in (*xa, *xb) if lo <= x <= hi)})
    diffs = [(abs(interpolate(x, xa, ya) - interpolate(x, xb, yb)), x) for x in grid]
    gap, at = max(diffs, key=lambda t: (t[0], -t[1]))
    return gap, at, lo, hi


def pair_gap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> dict:
    """Gap between two curves given as (rr, orr) points; see :data:`GAP_DEFINITION`.

    Args:
        a: curve a's (rr, orr) points.
        b: curve b's (rr, orr) points.

    Example:
        >>> pair_gap([(0.5, 0.5), (0.9, 0.8)], [(0.5, 0.5), (0.9, 0.6)])["gap"]
        0.20000000000000007
    """
    xa, ya = orr_of_rr(a)
    xb, yb = orr_of_rr(b)
    found = max_gap(xa, ya, xb, yb)
    if found is None:
        return {"gap": None, "at_rr": None, "mean_abs_gap": None, "overlap": None,
                "reason": "RR ranges do not overlap"}
    gap, at, lo, hi = found
    if hi > lo:
        n = 200
        xs = [lo + (hi - lo) * i / n for i in range(n + 1)]
        ds = [abs(interpolate(x, xa, ya) - interpolate(x, xb, yb)) for x in xs]
        mean_abs = sum((ds[i] + ds[i + 1]) / 2 for i in range(n)) / n
    else:
        mean_abs = gap
    return {"gap": gap, "at_rr": at, "mean_abs_gap": mean_abs, "overlap": [lo, hi]}


def tradeoff_gap(table: Sequence[Mapping[str, Any]]) -> dict:
    """How much the directions' RR-ORR trade-off curves differ (the 'one knob' number).

    Args:
        table: the dose-response table (:func:`dose_response_table`).

    Example:
        >>> gap = tradeoff_gap(dose_response_table(condition_metrics(rows)))  # doctest: +SKIP
        >>> gap["value"], gap["pair"], gap["at_rr"]  # doctest: +SKIP
    """
    cs = curves(table)
    pts: "OrderedDict[str, list[tuple[float, float]]]" = OrderedDict()
    non_monotone, skipped = [], []
    for label, rows in cs.items():
        p = [(float(r["rr"]), float(r["orr"])) for r in rows
             if r["rr"] is not None and r["orr"] is not None]
        if not p:
            skipped.append(label)
            continue
        pts[label] = p
        if not _monotone([rr for rr, _ in p]):
            non_monotone.append(label)
    names = list(pts)
    pairs, without = [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            g = pair_gap(pts[names[i]], pts[names[j]])
            g = {"a": names[i], "b": names[j], **g}
            pairs.append(g)
            if g["gap"] is None:
                without.append([names[i], names[j]])
    scored = [p for p in pairs if p["gap"] is not None]
    best = max(scored, key=lambda p: p["gap"]) if scored else None
    return {
        "definition": GAP_DEFINITION,
        "value": best["gap"] if best else None,
        "pair": [best["a"], best["b"]] if best else None,
        "at_rr": best["at_rr"] if best else None,
        "overlap": best["overlap"] if best else None,
        "mean_over_pairs": (sum(p["gap"] for p in scored) / len(scored)) if scored else None,
        "mean_abs_gap_over_pairs": (sum(p["mean_abs_gap"] for p in scored) / len(scored))
        if scored else None,
        "n_curves": len(names),
        "n_pairs": len(pairs),
        "pairs_without_overlap": without,
        "non_monotone": non_monotone,
        "curves_without_rates": skipped,
        "pairs": pairs,
    }
