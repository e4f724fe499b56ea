"""Tests for refusal_atlas.metrics.dose_response: curves over alpha, RR per unit ORR."""

import pytest

from refusal_atlas.metrics.dose_response import (
    curve_key,
    curve_label,
    dose_response_table,
    rr_per_orr,
)
from refusal_atlas.metrics.rates import condition_metrics

from .conftest import BASE, condition_rows, curve_rows


def test_dose_response_table_uses_the_baseline_as_alpha_zero():
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    table = dose_response_table(condition_metrics(rows))
    assert [(r["label"], r["alpha"], r["from_baseline"]) for r in table] == [
        ("A", 0.0, True), ("A", 10.0, False), ("A", 30.0, False)]
    assert (table[0]["rr"], table[0]["orr"]) == (0.5, 0.25)
    assert table[1]["rr"] == pytest.approx(0.7) and table[2]["orr"] == pytest.approx(0.8)
    assert curve_key("steer/A/L=12/a=10") == "steer/A/L=12"
    assert curve_label("vector/sae_core") == "vector/sae_core"


def test_rr_per_orr_by_hand():
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.7)})
    rows += curve_rows("B", {30: (0.8, 0.2)})  # ORR fell: no ratio
    out = rr_per_orr(dose_response_table(condition_metrics(rows)))["curves"]
    assert out["A"]["d_rr"] == pytest.approx(0.4) and out["A"]["d_orr"] == pytest.approx(0.45)
    assert out["A"]["rr_per_orr"] == pytest.approx(0.4 / 0.45)
    assert out["B"]["rr_per_orr"] is None and out["B"]["d_orr"] == pytest.approx(-0.05)
