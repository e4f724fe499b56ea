"""Tests for refusal_atlas.plots.sweeps: dose-response, trade-off and ablation figures."""

from metrics.conftest import BASE, condition_rows, curve_rows  # tests/metrics' row builders

from refusal_atlas.metrics import summarise
from refusal_atlas.plots.sweeps import plot_ablation, plot_dose_response, plot_tradeoff


def test_sweep_figures_are_written(tmp_path):
    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += condition_rows("ablate/A", "ablate", "A", None,
                           [("HR", False), ("HR", True), ("HC", False), ("HC", False),
                            ("BR", False), ("BC", False), ("BC", False), ("BC", False)])
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    s = summarise(rows, judge="substring", approximate=True,
                  alphas={"mode": "explicit", "alphas": [10.0, 30.0]})
    for fn, name in ((plot_dose_response, "d.png"), (plot_tradeoff, "t.png")):
        kwargs = {"gap": s["tradeoff_gap"]} if fn is plot_tradeoff else {}
        path = fn(s["dose_response"], tmp_path / name, judge="substring", **kwargs)
        assert path.stat().st_size > 1000
    path = plot_ablation(s["ablation"], tmp_path / "a.png", baseline=s["conditions"]["baseline"])
    assert path.stat().st_size > 1000
