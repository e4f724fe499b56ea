"""The SAE module: formulas per architecture, metadata, compatibility checks."""

from __future__ import annotations

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.sae import SAE, SAEInfo, check_compatible, hook_layer_from_name


def _random_sae(arch: str, *, d_in: int = 16, d_sae: int = 48, apply_b_dec: bool = False,
                seed: int = 0, **info_kw) -> SAE:
    g = torch.Generator().manual_seed(seed)
    info = SAEInfo(d_in=d_in, d_sae=d_sae, architecture=arch,
                   k=5 if arch == "topk" else None, hook_layer=info_kw.pop("hook_layer", 3),
                   apply_b_dec_to_input=apply_b_dec, **info_kw)
    tensors = {
        "W_enc": torch.randn(d_in, d_sae, generator=g),
        "b_enc": torch.randn(d_sae, generator=g) * 0.1,
        "W_dec": torch.randn(d_sae, d_in, generator=g),
        "b_dec": torch.randn(d_in, generator=g),
    }
    if arch == "jumprelu":
        tensors["threshold"] = torch.rand(d_sae, generator=g)
    return SAE.from_tensors(info, tensors)


def test_jumprelu_matches_method_formula():
    sae = _random_sae("jumprelu")
    x = torch.randn(7, 16)
    pre = x @ sae.W_enc + sae.b_enc
    expected = pre * (pre > sae.threshold)
    assert torch.equal(sae.encode(x), expected.detach())
    assert torch.allclose(sae(x), expected @ sae.W_dec + sae.b_dec)


def test_relu_and_apply_b_dec_flag():
    sae = _random_sae("relu", apply_b_dec=True)
    x = torch.randn(5, 16)
    expected = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    assert torch.allclose(sae.encode(x), expected)
    sae.info.apply_b_dec_to_input = False
    assert torch.allclose(sae.encode(x), torch.relu(x @ sae.W_enc + sae.b_enc))


def test_topk_keeps_k_largest_then_relu():
    sae = _random_sae("topk")
    x = torch.randn(9, 16)
    pre = (x @ sae.W_enc + sae.b_enc).detach()
    f = sae.encode(x)
    for row_pre, row_f in zip(pre, f):
        top = row_pre.topk(5).indices
        expected = torch.zeros_like(row_pre)
        expected[top] = torch.relu(row_pre[top])
        assert torch.equal(row_f, expected)
    assert int((f != 0).sum(dim=-1).max()) <= 5


def test_encode_accepts_batch_dims_and_dtypes():
    sae = _random_sae("jumprelu")
    x = torch.randn(2, 3, 16)
    f = sae.encode(x.to(torch.bfloat16))
    assert f.shape == (2, 3, 48) and f.dtype == torch.float32
    assert sae.decode(f).shape == (2, 3, 16)
    with pytest.raises(UserError, match="d_in=16"):
        sae.encode(torch.randn(4, 17))


def test_info_validation():
    with pytest.raises(UserError, match="architecture"):
        SAEInfo(d_in=4, d_sae=8, architecture="gated", hook_layer=0)
    with pytest.raises(UserError, match="k"):
        SAEInfo(d_in=4, d_sae=8, architecture="topk", hook_layer=0)
    with pytest.raises(UserError, match="dtype"):
        SAEInfo(d_in=4, d_sae=8, architecture="relu", hook_layer=0, dtype="int8")


def test_from_tensors_checks_shapes():
    info = SAEInfo(d_in=4, d_sae=8, architecture="jumprelu", hook_layer=0, source="x.npz")
    good = {"W_enc": torch.zeros(4, 8), "b_enc": torch.zeros(8), "W_dec": torch.zeros(8, 4),
            "b_dec": torch.zeros(4), "threshold": torch.zeros(8)}
    SAE.from_tensors(info, good)
    with pytest.raises(UserError, match=r"W_dec.*\[4, 8\].*expected \[8, 4\]"):
        SAE.from_tensors(info, {**good, "W_dec": torch.zeros(4, 8)})
    with pytest.raises(UserError, match="lack threshold"):
        SAE.from_tensors(info, {k: v for k, v in good.items() if k != "threshold"})


@pytest.mark.parametrize("name, layer", [
    ("blocks.20.hook_resid_post", 21),
    ("blocks.7.hook_resid_pre", 7),
    ("model.layers.19.output", 20),
    ("resid_post_layer_19", 20),
    ("resid_pre_layer_4", 4),
    ("blocks.5.hook_mlp_out", None),
    ("blocks.5.hook_resid_mid", None),
])
def test_hook_layer_from_name(name, layer):
    assert hook_layer_from_name(name) == layer


def test_check_compatible_messages():
    sae = _random_sae("jumprelu", hook_layer=21, source_format="gemma_scope",
                      hook_name="blocks.20.hook_resid_post", model_name="gemma-2-9b-it")
    check_compatible(sae, d_model=16, layer=21, n_layers=42)
    with pytest.raises(UserError) as err:
        check_compatible(sae, d_model=16, layer=12)
    msg = str(err.value)
    assert "resid_pre of layer 21 (Gemma Scope layer 20)" in msg and "layer 12" in msg
    with pytest.raises(UserError, match="d_in=16.*d_model=3584"):
        check_compatible(sae, d_model=3584, layer=21)
    with pytest.raises(UserError, match="only 20 layers"):
        check_compatible(sae, d_model=16, layer=21, n_layers=20)
    sae.info.hook_layer = None
    with pytest.raises(UserError, match="residual stream"):
        check_compatible(sae, d_model=16, layer=21)


def test_neuronpedia_url():
    sae = _random_sae("relu", neuronpedia_id="gemma-2-9b-it/20-gemmascope-res-16k")
    assert sae.neuronpedia_url(12) == \
        "https://www.neuronpedia.org/gemma-2-9b-it/20-gemmascope-res-16k/12"
    assert _random_sae("relu").neuronpedia_url(12) is None
    with pytest.raises(UserError):
        sae.neuronpedia_url(48)


def test_fold_input_scale_is_exact_reparametrisation():
    sae = _random_sae("topk", apply_b_dec=True)
    x = torch.randn(6, 16)
    scale = 0.37
    f_scaled = sae.encode(x * scale)
    recon_scaled = sae.decode(f_scaled)
    sae.fold_input_scale(scale)
    assert torch.allclose(sae.encode(x), f_scaled, atol=1e-5)
    assert torch.allclose(sae(x), recon_scaled / scale, atol=1e-4)
    assert sae.info.extras["input_scale"] == pytest.approx(scale)


def test_decoder_directions():
    sae = _random_sae("relu")
    rows = sae.decoder_directions([3, 5], normalize=True)
    assert rows.shape == (2, 16)
    assert torch.allclose(rows.norm(dim=-1), torch.ones(2))
    assert torch.allclose(rows[0], sae.W_dec[3] / sae.W_dec[3].norm())
    with pytest.raises(UserError):
        sae.decoder_directions([48])
