"""Gemma Scope params.npz SAEs, local and from the hub."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.sae import (
    load_gemma_scope,
    load_sae,
)


def _write_gemma_npz(path: Path, d: int = 32, n: int = 1024, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "W_enc": rng.standard_normal((d, n)).astype(np.float32) * 0.3,
        "W_dec": rng.standard_normal((n, d)).astype(np.float32),
        "b_enc": rng.standard_normal(n).astype(np.float32) * 0.1,
        "b_dec": rng.standard_normal(d).astype(np.float32),
        "threshold": rng.uniform(0.05, 0.8, n).astype(np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def test_gemma_scope_jumprelu_matches_numpy_formula(tmp_path):
    npz = tmp_path / "layer_20" / "width_1k" / "average_l0_14" / "params.npz"
    p = _write_gemma_npz(npz)
    sae = load_gemma_scope(npz)
    assert sae.architecture == "jumprelu" and not sae.info.apply_b_dec_to_input
    assert sae.hook_layer == 21
    assert sae.info.hook_description() == "resid_pre of layer 21 (Gemma Scope layer 20)"
    assert sae.info.extras["average_l0"] == 14
    x = np.random.default_rng(1).standard_normal((11, 32)).astype(np.float32)
    pre = x @ p["W_enc"] + p["b_enc"]
    f = pre * (pre > p["threshold"])
    got = sae.encode(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, f, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got != 0, f != 0)
    recon = f @ p["W_dec"] + p["b_dec"]
    np.testing.assert_allclose(sae(torch.from_numpy(x)).detach().numpy(), recon, rtol=1e-4, atol=1e-4)
    assert sae.neuronpedia_url(0) is None  # not a known Neuronpedia SAE


def test_gemma_scope_layer_and_width_mismatch(tmp_path):
    npz = tmp_path / "layer_20" / "width_1k" / "average_l0_14" / "params.npz"
    _write_gemma_npz(npz)
    with pytest.raises(UserError, match="Gemma Scope layer 20.*layer=12"):
        load_gemma_scope(npz, layer=12)
    assert load_gemma_scope(npz, layer=20).hook_layer == 21
    bad = tmp_path / "layer_9" / "width_2k" / "params.npz"
    _write_gemma_npz(bad)
    with pytest.raises(UserError, match="width_2k"):
        load_gemma_scope(bad)


def test_gemma_scope_layer_needed_when_path_silent(tmp_path):
    npz = tmp_path / "params.npz"
    _write_gemma_npz(npz)
    with pytest.raises(UserError, match="pass layer="):
        load_gemma_scope(npz)
    sae = load_gemma_scope(tmp_path, layer=5)  # the folder works too
    assert sae.hook_layer == 6


def test_gemma_scope_bad_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_gemma_scope(tmp_path / "nope" / "params.npz")
    npz = tmp_path / "layer_1" / "params.npz"
    npz.parent.mkdir()
    np.savez(npz, W_enc=np.zeros((4, 8), np.float32))
    with pytest.raises(UserError, match="lacks W_dec"):
        load_gemma_scope(npz)
    junk = tmp_path / "layer_2" / "params.npz"
    junk.parent.mkdir()
    junk.write_text("not a zip")
    with pytest.raises(UserError, match="cannot read"):
        load_gemma_scope(junk)
    wrong = tmp_path / "layer_3" / "params.npz"
    arrays = _write_gemma_npz(wrong, d=8, n=16)
    arrays["b_dec"] = np.zeros(9, np.float32)
    np.savez(wrong, **arrays)
    with pytest.raises(UserError, match="b_dec"):
        load_gemma_scope(wrong)


def test_gemma_scope_hub_path(tmp_path, monkeypatch):
    local = tmp_path / "dl" / "params.npz"
    _write_gemma_npz(local, d=4, n=16384)
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        return str(local)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    sae = load_sae("gemma-scope:google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_91",
                   model_name="toy")
    assert calls == [("google/gemma-scope-9b-it-res", "layer_20/width_16k/average_l0_91/params.npz")]
    assert sae.hook_layer == 21 and sae.d_sae == 16384
    assert sae.info.source == "google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_91"
    assert sae.neuronpedia_url(7) == \
        "https://www.neuronpedia.org/gemma-2-9b-it/20-gemmascope-res-16k/7"
    # the paper's SAE (average_l0_14) has no dashboards: no URL rather than a wrong one
    sae = load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14/params.npz",
                           model_name="toy")
    assert calls[-1][1] == "layer_20/width_16k/average_l0_14/params.npz"
    assert sae.neuronpedia_url(7) is None
    # without model_name the repo's model is used, and its width is checked
    with pytest.raises(UserError, match="3584"):
        load_sae("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")
