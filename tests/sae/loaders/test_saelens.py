"""SAELens folders (read and write) and SAELens pretrained SAEs."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from refusal_atlas.errors import UserError
from refusal_atlas.sae import (
    SAE,
    SAEInfo,
    load_sae,
    load_saelens_dir,
    load_saelens_pretrained,
    save_saelens_dir,
)


def _random_sae(arch: str, seed: int = 0) -> SAE:
    g = torch.Generator().manual_seed(seed)
    d, n = 12, 40
    info = SAEInfo(d_in=d, d_sae=n, architecture=arch, k=6 if arch == "topk" else None,
                   hook_layer=7, apply_b_dec_to_input=arch != "jumprelu",
                   hook_name="blocks.6.hook_resid_post", model_name="toy-model",
                   source="memory", source_format="refusal_atlas",
                   neuronpedia_id="toy/6-res" if arch == "relu" else None,
                   extras={"input_scale": 0.5, "note": ["a", 1]})
    tensors = {"W_enc": torch.randn(d, n, generator=g), "b_enc": torch.randn(n, generator=g),
               "W_dec": torch.randn(n, d, generator=g), "b_dec": torch.randn(d, generator=g)}
    if arch == "jumprelu":
        tensors["threshold"] = torch.rand(n, generator=g)
    return SAE.from_tensors(info, tensors)


@pytest.mark.parametrize("arch", ["jumprelu", "relu", "topk"])
def test_saelens_round_trip_is_exact(tmp_path, arch):
    sae = _random_sae(arch)
    folder = save_saelens_dir(sae, tmp_path / arch)
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == {"relu": "standard"}.get(arch, arch)
    assert cfg["metadata"]["hook_name"] == "blocks.6.hook_resid_post"
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")
    assert cfg["normalize_activations"] == "none"
    if arch == "topk":
        assert cfg["k"] == 6 and cfg["rescale_acts_by_decoder_norm"] is False
    loaded = load_saelens_dir(folder)
    for name, tensor in sae.state_tensors().items():
        assert torch.equal(loaded.state_tensors()[name], tensor), name
    a, b = sae.info.to_dict(), loaded.info.to_dict()
    assert a.pop("source") == "memory" and b.pop("source") == str(folder)
    assert a == b
    x = torch.randn(9, 12)
    assert torch.equal(loaded.encode(x), sae.encode(x))
    assert torch.equal(loaded(x), sae(x))
    assert isinstance(load_sae(str(folder)), SAE)  # dispatch on a folder with cfg.json


def _write_saelens(folder: Path, cfg: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    return folder


def test_saelens_pre6_config_and_log_threshold(tmp_path):
    d, n = 6, 10
    W_enc, W_dec = torch.randn(d, n), torch.randn(n, d)
    b_enc, b_dec, thr = torch.randn(n), torch.randn(d), torch.rand(n) + 0.1
    folder = _write_saelens(
        tmp_path / "old",
        {"architecture": "jumprelu", "d_in": d, "d_sae": n, "dtype": "float32",
         "hook_name": "blocks.3.hook_resid_post", "model_name": "gpt2",
         "apply_b_dec_to_input": False, "normalize_activations": None},
        {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec,
         "log_threshold": thr.log()},
    )
    sae = load_saelens_dir(folder)
    assert sae.hook_layer == 4 and sae.info.model_name == "gpt2"
    x = torch.randn(5, d)
    pre = x @ W_enc + b_enc
    assert torch.allclose(sae.encode(x), pre * (pre > thr), atol=1e-6)
    # pre-6 topk spelled as activation_fn_str + kwargs
    folder = _write_saelens(
        tmp_path / "oldtopk",
        {"d_in": d, "d_sae": n, "dtype": "float32", "hook_point": "blocks.0.hook_resid_pre",
         "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3}},
        {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec},
    )
    sae = load_saelens_dir(folder)
    assert sae.architecture == "topk" and sae.k == 3 and sae.hook_layer == 0
    assert sae.info.apply_b_dec_to_input  # SAELens' default


def test_saelens_rescale_and_normalisation_are_folded(tmp_path):
    d, n, k = 6, 10, 3
    W_enc, W_dec = torch.randn(d, n), torch.randn(n, d) * 3
    b_enc, b_dec = torch.randn(n), torch.randn(d)
    folder = _write_saelens(
        tmp_path / "topk",
        {"architecture": "topk", "d_in": d, "d_sae": n, "k": k, "dtype": "float32",
         "rescale_acts_by_decoder_norm": True, "apply_b_dec_to_input": True,
         "normalize_activations": "expected_average_only_in",
         "metadata": {"hook_name": "blocks.2.hook_resid_post", "sae_lens_version": "6.5.0"}},
        {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec},
    )
    with pytest.raises(UserError, match="activation_scaler.json"):
        load_saelens_dir(folder)
    (folder / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 0.25}))
    sae = load_saelens_dir(folder)
    x = torch.randn(8, d)
    # SAELens: scale input, rescale pre-acts by decoder norms, top-k, divide back, unscale
    norms = W_dec.norm(dim=-1)
    pre = ((x * 0.25 - b_dec) @ W_enc + b_enc) * norms
    vals, idx = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
    recon = ((f / norms) @ W_dec + b_dec) / 0.25
    assert torch.allclose(sae.encode(x), f, atol=1e-4)
    assert torch.allclose(sae(x), recon, atol=1e-4)


def test_saelens_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_saelens_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no cfg.json"):
        load_saelens_dir(tmp_path / "empty")
    d, n = 4, 8
    base = {"W_enc": torch.zeros(d, n), "W_dec": torch.zeros(n, d), "b_enc": torch.zeros(n),
            "b_dec": torch.zeros(d)}
    folder = _write_saelens(tmp_path / "gated", {"architecture": "gated", "d_in": d, "d_sae": n}, base)
    with pytest.raises(UserError, match="gated"):
        load_saelens_dir(folder)
    folder = _write_saelens(tmp_path / "shape", {"architecture": "standard", "d_in": d, "d_sae": 9}, base)
    with pytest.raises(UserError, match="shape"):
        load_saelens_dir(folder)


def test_saelens_pretrained_without_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sae_lens", None)  # import fails as if not installed
    with pytest.raises(UserError, match="pip install sae-lens"):
        load_saelens_pretrained("gemma-scope-9b-it-res-canonical", "layer_20/width_16k/canonical")
    with pytest.raises(UserError, match="pip install sae-lens"):
        load_sae("saelens:gemma-scope-9b-it-res-canonical/layer_20/width_16k/canonical")


def test_saelens_pretrained_converts(monkeypatch):
    d, n = 5, 7
    sd = {"W_enc": torch.randn(d, n), "W_dec": torch.randn(n, d), "b_enc": torch.randn(n),
          "b_dec": torch.randn(d), "threshold": torch.rand(n)}

    class FakeCfg:
        def to_dict(self):
            return {"architecture": "jumprelu", "d_in": d, "d_sae": n, "dtype": "float32",
                    "apply_b_dec_to_input": False, "normalize_activations": "none",
                    "metadata": {"model_name": "gemma-2-9b-it",
                                 "hook_name": "blocks.20.hook_resid_post",
                                 "neuronpedia_id": "gemma-2-9b-it/20-gemmascope-res-16k"}}

    class FakeSAE:
        cfg = FakeCfg()

        @classmethod
        def from_pretrained(cls, release, sae_id, device="cpu"):
            assert (release, sae_id) == ("rel", "layer_20/width_16k/canonical")
            return cls()

        def state_dict(self):
            return sd

    monkeypatch.setitem(sys.modules, "sae_lens", types.SimpleNamespace(SAE=FakeSAE))
    sae = load_sae("saelens:rel/layer_20/width_16k/canonical")
    assert sae.hook_layer == 21 and sae.info.source_format == "saelens"
    assert sae.neuronpedia_url(3).endswith("/gemma-2-9b-it/20-gemmascope-res-16k/3")
    assert torch.equal(sae.W_enc, sd["W_enc"])
