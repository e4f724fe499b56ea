"""evaluate_sae: FVE, MSE, L0 and dead share by their definitions."""

from __future__ import annotations

import pytest
import torch

from refusal_atlas.sae import SAE, SAEInfo, evaluate_sae


def test_evaluate_sae_definitions():
    d = 4
    info = SAEInfo(d_in=d, d_sae=d, architecture="relu", hook_layer=0)
    eye = torch.eye(d)
    sae = SAE.from_tensors(info, {"W_enc": eye, "b_enc": torch.zeros(d), "W_dec": eye,
                                  "b_dec": torch.zeros(d)})
    x = torch.tensor([[1.0, 2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.5, 1.0, 0.0, 0.0]])
    m = evaluate_sae(sae, x)  # non-negative inputs are reconstructed exactly
    assert m["fve"] == pytest.approx(1.0) and m["mse"] == pytest.approx(0.0)
    assert m["l0"] == pytest.approx(5 / 3) and m["dead_fraction"] == pytest.approx(0.5)
    y = x.clone()
    y[0, 1] = -2.0  # ReLU zeroes it: error 4 on that element
    m = evaluate_sae(sae, y, batch_size=2)
    centred = float(((y - y.mean(dim=0)) ** 2).sum())
    assert m["fve"] == pytest.approx(1 - 4.0 / centred)
    assert m["mse"] == pytest.approx(4.0 / 12)
