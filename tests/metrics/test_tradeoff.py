"""Tests for refusal_atlas.metrics.tradeoff: the trade-off gap by hand."""

import json

import pytest

from refusal_atlas.metrics.dose_response import dose_response_table
from refusal_atlas.metrics.rates import condition_metrics
from refusal_atlas.metrics.tradeoff import pair_gap, tradeoff_gap

from .conftest import BASE, condition_rows, curve_rows


def test_pair_gap_by_hand():
    a = [(0.5, 0.5), (0.7, 0.6), (0.9, 0.8)]
    b = [(0.5, 0.5), (0.8, 0.6), (1.0, 0.9)]
    g = pair_gap(a, b)
    # overlap [0.5, 0.9]; at RR 0.8: A = 0.7, B = 0.6 -> 0.1 (at 0.7: 0.0333, at 0.9: 0.05)
    assert g["gap"] == pytest.approx(0.1) and g["at_rr"] == pytest.approx(0.8)
    assert g["overlap"] == [0.5, 0.9]
    # mean |A - B| over [0.5, 0.9]: piecewise-linear |diff| 0 -> 1/30 -> 0.1 -> 0.05
    exact = (0.5 * 0.2 * (1 / 30) + 0.5 * 0.1 * (1 / 30 + 0.1) + 0.5 * 0.1 * (0.1 + 0.05)) / 0.4
    assert g["mean_abs_gap"] == pytest.approx(exact, abs=1e-4)
    assert pair_gap(a, a)["gap"] == 0.0
    none = pair_gap([(0.1, 0.1), (0.2, 0.2)], [(0.5, 0.1), (0.6, 0.3)])
    assert none["gap"] is None and "overlap" in none["reason"]
    point = pair_gap([(0.5, 0.2)], [(0.4, 0.0), (0.6, 0.4)])  # one curve is a single point
    assert point["gap"] == pytest.approx(0.0) and point["overlap"] == [0.5, 0.5]
    merged = pair_gap([(0.5, 0.2), (0.5, 0.4), (0.9, 0.5)], [(0.5, 0.3), (0.9, 0.5)])
    assert merged["gap"] == pytest.approx(0.0)  # equal RR merged to their mean ORR


def test_tradeoff_gap_over_directions():
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    rows += curve_rows("C", {10: (0.4, 0.2), 30: (0.3, 0.1)})  # RR falls: meets A, B at 0.5 only
    rows += curve_rows("D", {10: (0.8, 0.5), 30: (0.6, 0.4)})  # RR not monotone in alpha
    gap = tradeoff_gap(dose_response_table(condition_metrics(rows)))
    assert gap["n_curves"] == 4 and gap["n_pairs"] == 6
    assert gap["non_monotone"] == ["D"]
    # every curve passes through the baseline (0.5, 0.25), so every pair overlaps at least there
    assert gap["pairs_without_overlap"] == []
    by_pair = {(p["a"], p["b"]): p for p in gap["pairs"]}
    assert by_pair[("A", "C")]["overlap"] == [0.5, 0.5] and by_pair[("A", "C")]["gap"] == 0.0
    # A vs B with the baseline point (0.5, 0.25) on both curves
    a = [(0.5, 0.25), (0.7, 0.6), (0.9, 0.8)]
    b = [(0.5, 0.25), (0.8, 0.6), (1.0, 0.9)]
    assert by_pair[("A", "B")]["gap"] == pytest.approx(pair_gap(a, b)["gap"])
    assert gap["value"] == max(p["gap"] for p in gap["pairs"])
    assert gap["mean_over_pairs"] == pytest.approx(sum(p["gap"] for p in gap["pairs"]) / 6)
    assert "piecewise-linear" in gap["definition"]
    json.dumps(gap)
