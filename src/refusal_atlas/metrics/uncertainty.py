"""Uncertainty of the trade-off gap: bootstrap CI over prompts and a permutation p-value."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .dose_response import curves, dose_response_table
from .rates import condition_metrics
from .tradeoff import max_gap, orr_of_rr

__all__ = ["UNCERTAINTY_DEFINITION", "gap_uncertainty"]

UNCERTAINTY_DEFINITION = (
    "bootstrap: prompts are resampled with replacement (harmful and benign separately, the same "
    "draw for every condition, so curves stay paired) and the gap is recomputed; ci95 = the 2.5 "
    "and 97.5 percentiles. permutation: the null hypothesis 'every direction is the same knob' "
    "makes a prompt's verdicts under different directions at the same alpha exchangeable, so "
    "they are shuffled across directions within each (prompt, alpha) cell and the gap is "
    "recomputed; p_value = (1 + #null gaps >= observed) / (1 + n). The max over pairs is biased "
    "upwards by noise even when the curves are identical: null_mean and null_95 show how large "
    "a gap pure sampling noise produces with this many prompts."
)


def _fast_gap(curve_points: Mapping[str, list[tuple[float, float]]]
              ) -> tuple[float | None, float | None]:
    """(largest pair gap, mean pair gap) without the per-pair details."""
    names = list(curve_points)
    gaps = []
    for i in range(len(names)):
        xa, ya = orr_of_rr(curve_points[names[i]])
        for j in range(i + 1, len(names)):
            found = max_gap(xa, ya, *orr_of_rr(curve_points[names[j]]))
            if found is not None:
                gaps.append(found[0])
    if not gaps:
        return None, None
    return max(gaps), sum(gaps) / len(gaps)


def gap_uncertainty(rows: Sequence[Mapping[str, Any]], *, n_boot: int = 1000, n_perm: int = 1000,
                    seed: int = 0) -> dict | None:
    """Bootstrap CI and permutation p-value of the trade-off gap; see UNCERTAINTY_DEFINITION.

    Args:
        rows: judged result rows, each with a ``prompt_id``.
        n_boot: bootstrap resamples of the prompts.
        n_perm: permutations of verdicts across directions.
        seed: seed of both.

    Returns:
        observed gap, bootstrap CIs and permutation test; None with fewer than two curves
        or no gap.

    Example:
        >>> unc = gap_uncertainty(result.rows, n_boot=1000, n_perm=1000)  # doctest: +SKIP
        >>> unc["bootstrap"]["value_ci95"], unc["permutation"]["p_value"]  # doctest: +SKIP
    """
    table = dose_response_table(condition_metrics(rows))
    cs = curves(table)
    if len(cs) < 2:
        return None
    cond_ids = sorted({r["condition"] for rs in cs.values() for r in rs})
    prompt_ids = sorted({r["prompt_id"] for r in rows if r["condition"] in set(cond_ids)})
    ci = {c: i for i, c in enumerate(cond_ids)}
    pi = {p: i for i, p in enumerate(prompt_ids)}
    verdict = np.full((len(cond_ids), len(prompt_ids)), np.nan)
    harmful = np.zeros(len(prompt_ids), dtype=bool)
    for r in rows:
        if r["condition"] in ci:
            harmful[pi[r["prompt_id"]]] = bool(r["harmful"])
            if not (r.get("parse_error") or r.get("refused") is None):
                verdict[ci[r["condition"]], pi[r["prompt_id"]]] = float(bool(r["refused"]))
    curve_conds = {label: [(row["alpha"], ci[row["condition"]]) for row in rs]
                   for label, rs in cs.items()}

    def gap_of(v: "np.ndarray", w: "np.ndarray") -> tuple[float | None, float | None]:
        ok = ~np.isnan(v)
        filled = np.where(ok, v, 0.0)
        wh, wb = w * harmful, w * ~harmful
        den_h, den_b = ok @ wh, ok @ wb
        with np.errstate(invalid="ignore", divide="ignore"):
            rr = (filled @ wh) / den_h
            orr = (filled @ wb) / den_b
        pts = {}
        for label, items in curve_conds.items():
            p = [(float(rr[c]), float(orr[c])) for _, c in items
                 if den_h[c] > 0 and den_b[c] > 0]
            if p:
                pts[label] = p
        return _fast_gap(pts)

    ones = np.ones(len(prompt_ids))
    observed, _ = gap_of(verdict, ones)
    if observed is None:
        return None
    rng = np.random.default_rng(seed)
    h_idx, b_idx = np.flatnonzero(harmful), np.flatnonzero(~harmful)
    boot_max, boot_mean = [], []
    for _ in range(n_boot):
        w = np.zeros(len(prompt_ids))
        for idx in (h_idx, b_idx):
            if len(idx):
                np.add.at(w, rng.choice(idx, size=len(idx), replace=True), 1.0)
        g, m = gap_of(verdict, w)
        if g is not None:
            boot_max.append(g)
            boot_mean.append(m)
    # cells of exchangeable conditions: the same alpha on different curves (not the shared
    # baseline point)
    cells: dict[float, list[int]] = {}
    for label, items in curve_conds.items():
        for alpha, c in items:
            if cond_ids[c] != "baseline":
                cells.setdefault(alpha, []).append(c)
    cells = {a: sorted(set(cs_)) for a, cs_ in cells.items() if len(set(cs_)) > 1}
    null = []
    for _ in range(n_perm if cells else 0):
        v = verdict.copy()
        for members in cells.values():
            block = v[members]  # [k, P]
            order = np.argsort(rng.random(block.shape), axis=0)
            v[members] = np.take_along_axis(block, order, axis=0)
        g, _ = gap_of(v, ones)
        if g is not None:
            null.append(g)

    def q(values, lo, hi):
        return [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if values \
            else None

    return {
        "definition": UNCERTAINTY_DEFINITION,
        "observed": observed,
        "bootstrap": {"n": len(boot_max), "seed": seed, "value_ci95": q(boot_max, 2.5, 97.5),
                      "mean_over_pairs_ci95": q(boot_mean, 2.5, 97.5)},
        "permutation": None if not null else {
            "n": len(null), "seed": seed,
            "p_value": (1 + sum(g >= observed - 1e-12 for g in null)) / (1 + len(null)),
            "null_mean": float(np.mean(null)), "null_95": float(np.percentile(null, 95))},
    }
