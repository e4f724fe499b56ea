"""SAE training: feature recovery on synthetic sparse data, scaling, outliers."""

from __future__ import annotations

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.sae import (
    SAETrainConfig,
    evaluate_sae,
    load_saelens_dir,
    norm_outlier_mask,
    save_saelens_dir,
    train_sae,
)


def _sparse_data(n: int = 24_000, d: int = 64, m: int = 128, p: float = 3 / 128,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows = sparse non-negative combinations (~3 active) of m unit ground-truth features."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(m, d, generator=g)
    features /= features.norm(dim=-1, keepdim=True)
    active = torch.rand(n, m, generator=g) < p
    magnitude = torch.rand(n, m, generator=g) + 0.5
    return (active * magnitude) @ features, features


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_NO_PROGRESS", "1")


def test_topk_recovers_ground_truth_features():
    x, features = _sparse_data()
    x = x * 40.0 + 3.0  # raw units and an offset: scaling and b_dec must handle both
    config = SAETrainConfig(expansion=4, k=4, batch_size=256, steps=900, lr=2e-3,
                            exclude_norm_outliers=None, num_threads=1, eval_max_rows=4096)
    sae, report = train_sae(x, config, hook_layer=3, model_name="synthetic")
    rows = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
    best = (features @ rows.T).max(dim=1).values
    assert (best > 0.9).float().mean() >= 0.8, best
    assert report.train_metrics["fve"] > 0.85
    assert report.train_metrics["l0"] <= 4
    assert report.steps == 900 and report.history[-1]["step"] == 900
    assert sae.info.hook_layer == 3 and sae.info.source_format == "refusal_atlas"
    assert sae.info.extras["input_scale"] == pytest.approx(report.input_scale)
    # encode works on raw activations: the fold gives the same FVE as the report
    assert evaluate_sae(sae, x[:4096])["fve"] > 0.85


def test_training_is_seeded_and_saves_to_saelens(tmp_path):
    x, _ = _sparse_data(n=4096, d=16, m=32, p=0.1)
    config = SAETrainConfig(expansion=2, k=3, batch_size=128, steps=40, num_threads=1,
                            eval_max_rows=512)
    a, _ = train_sae(x, config, hook_layer=1, model_name="m")
    b, _ = train_sae(x, config, hook_layer=1, model_name="m")
    for name, tensor in a.state_tensors().items():
        assert torch.equal(tensor, b.state_tensors()[name]), name
    loaded = load_saelens_dir(save_saelens_dir(a, tmp_path / "sae"))
    assert torch.equal(loaded.encode(x[:64]), a.encode(x[:64]))
    assert loaded.info.extras["train_config"]["k"] == 3


def test_jumprelu_training_runs_and_is_sparse():
    x, _ = _sparse_data(n=6000, d=32, m=64, p=0.05)
    config = SAETrainConfig(architecture="jumprelu", expansion=4, batch_size=256, steps=300,
                            lr=2e-3, l0_coeff=0.5, jumprelu_init_l0=16, num_threads=1,
                            eval_max_rows=2048)
    sae, report = train_sae(x, config, hook_layer=0, model_name="synthetic")
    assert sae.architecture == "jumprelu" and sae.threshold is not None
    assert bool((sae.threshold >= 0).all())
    assert report.train_metrics["fve"] > 0.6
    assert report.train_metrics["l0"] < 32


def test_norm_outliers_are_excluded_and_reported():
    x, _ = _sparse_data(n=3000, d=16, m=32, p=0.1)
    x = x + 0.5
    x[:7] *= 200.0  # attention-sink-like rows
    assert int(norm_outlier_mask(x, 10.0).sum()) == 7
    config = SAETrainConfig(expansion=2, k=3, batch_size=128, steps=30, num_threads=1,
                            eval_max_rows=512)
    _, report = train_sae(x, config, hook_layer=0, model_name="m", eval_activations=x[:500])
    assert report.n_excluded_outliers == 7 and report.n_train == 2993
    assert report.eval_metrics is not None and report.eval_metrics["n"] == 500
    clean = report.eval_metrics_without_outliers
    assert clean is not None and clean["n"] == 493 and clean["n_excluded"] == 7


def test_bad_inputs():
    with pytest.raises(UserError, match="2-D"):
        train_sae(torch.randn(10), hook_layer=0, model_name="m")
    with pytest.raises(UserError, match="k must"):
        train_sae(torch.randn(300, 4), SAETrainConfig(k=100, expansion=2), hook_layer=0,
                  model_name="m")
    with pytest.raises(UserError, match="batch_size"):
        train_sae(torch.randn(300, 4), SAETrainConfig(k=2, batch_size=1024), hook_layer=0,
                  model_name="m")
    bad = torch.randn(300, 4)
    bad[3, 1] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        train_sae(bad, SAETrainConfig(k=2, batch_size=64), hook_layer=0, model_name="m")


def test_training_stops_at_a_plateau_and_still_decays_the_lr():
    x, features = _sparse_data(n=8192, d=32, m=64, p=3 / 64)
    base = dict(expansion=4, k=4, batch_size=256, steps=2000, lr=2e-3, log_every=25,
                exclude_norm_outliers=None, num_threads=1, eval_max_rows=2048)
    full_sae, full = train_sae(x, SAETrainConfig(**base), hook_layer=1, model_name="m")
    sae, report = train_sae(x, SAETrainConfig(**base, plateau=0.001, plateau_window=8),
                            hook_layer=1, model_name="m")
    assert report.plateau_at is not None and report.planned_steps == 2000
    assert report.steps < 2000 and report.history[-1]["step"] == report.steps
    # the decay keeps its share of the schedule: it starts where the plateau was found
    assert report.steps == pytest.approx(report.plateau_at / 0.8, abs=1)
    assert report.history[-1]["lr"] < 0.1 * 2e-3
    # the flattened run's FVE test held: not more than the tolerance worse than all steps
    assert report.train_metrics["fve"] > full.train_metrics["fve"] - 0.01
    assert full.plateau_at is None and full.steps == 2000
    assert report.config["plateau"] == 0.001 and "plateau" not in full.config
