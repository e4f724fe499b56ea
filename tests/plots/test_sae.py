"""The SAE stages' figures: training curve, popularity, overlap, core scores, trade-off."""

from __future__ import annotations

from sae.planted import planted_analysis  # tests/sae/planted.py

from refusal_atlas.plots.sae import (
    plot_core_scores,
    plot_overlap,
    plot_popularity,
    plot_tradeoff_vs_directions,
    plot_training,
)


def test_analysis_figures(tmp_path):
    result = planted_analysis()
    for path in (plot_popularity(result, tmp_path / "pop.png"),
                 plot_overlap(result, 3, tmp_path / "overlap.png"),
                 plot_core_scores(result, tmp_path / "core.png")):
        assert path.stat().st_size > 1000


def test_training_curve(tmp_path):
    history = [{"step": 25.0, "fve": 0.5, "dead_fraction": 0.2},
               {"step": 50.0, "fve": 0.7, "dead_fraction": 0.1}]
    assert plot_training(history, tmp_path / "training.png").stat().st_size > 1000
    assert plot_training([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_tradeoff_vs_directions(tmp_path):
    def metrics(label, points):
        return {"dose_response": [{"label": label, "alpha": a, "rr": rr, "orr": orr}
                                  for a, rr, orr in points]}

    sae = metrics("vector/sae_core", [(0, 0.2, 0.1), (1, 0.6, 0.3)])
    directions = metrics("Alpha", [(0, 0.2, 0.1), (1, 0.8, 0.2), (2, None, 0.4)])
    path = plot_tradeoff_vs_directions(sae, directions, tmp_path / "tradeoff.png")
    assert path.stat().st_size > 1000
