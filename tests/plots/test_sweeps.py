"""Tests for refusal_atlas.plots.sweeps: dose-response, trade-off and ablation figures."""

from metrics.conftest import ablation_and_two_curves  # tests/metrics' row builders

from refusal_atlas.plots.sweeps import plot_ablation, plot_dose_response, plot_tradeoff


def test_sweep_figures_are_written(tmp_path):
    rows, s = ablation_and_two_curves()
    for fn, name in ((plot_dose_response, "d.png"), (plot_tradeoff, "t.png")):
        kwargs = {"gap": s["tradeoff_gap"]} if fn is plot_tradeoff else {}
        path = fn(s["dose_response"], tmp_path / name, judge="substring", **kwargs)
        assert path.stat().st_size > 1000
    path = plot_ablation(s["ablation"], tmp_path / "a.png", baseline=s["conditions"]["baseline"])
    assert path.stat().st_size > 1000
