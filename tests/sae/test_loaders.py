"""Loaders: Gemma Scope params.npz (local and hub), SAELens folders, dictionary_learning."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from refusal_atlas.errors import UserError
from refusal_atlas.sae import (
    SAE,
    SAEInfo,
    load_dictionary_learning,
    load_gemma_scope,
    load_sae,
    load_saelens_dir,
    load_saelens_pretrained,
    save_saelens_dir,
)

# ---------------------------------------------------------------------------- Gemma Scope


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


def test_gemma_scope_hub_errors(monkeypatch):
    from huggingface_hub import errors as hf_errors

    def offline(repo_id, filename, **kw):
        raise hf_errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(UserError, match="unreachable"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")

    def gated(repo_id, filename, **kw):
        err = hf_errors.GatedRepoError.__new__(hf_errors.GatedRepoError)
        Exception.__init__(err, "403 gated")
        raise err

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(UserError, match="denied.*licence"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")

    def broken(repo_id, filename, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(UserError, match="ConnectionError"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")


# ---------------------------------------------------------------------------- SAELens


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


# ---------------------------------------------------------------------------- dictionary_learning


def _dl_folder(root: Path, sd: dict[str, torch.Tensor], trainer: dict | None,
               sub: str = "saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1") -> Path:
    folder = root / sub
    folder.mkdir(parents=True)
    torch.save(sd, folder / "ae.pt")
    if trainer is not None:
        (folder / "config.json").write_text(json.dumps({"trainer": trainer,
                                                        "buffer": {"io": "out", "d_submodule": 8}}))
    return folder


def _linear_keys(d: int, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"encoder.weight": torch.randn(n, d, generator=g),
            "encoder.bias": torch.randn(n, generator=g) * 0.1,
            "decoder.weight": torch.randn(d, n, generator=g)}


def _trainer(dict_class: str, **kw) -> dict:
    return {"dict_class": dict_class, "activation_dim": 8, "dict_size": 24, "layer": 19,
            "lm_name": "meta-llama/Llama-3.1-8B-Instruct", "submodule_name": "resid_post_layer_19",
            **kw}


def test_dictionary_learning_relu_autoencoder(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {**_linear_keys(8, 24, g), "bias": torch.randn(8, generator=g)}
    folder = _dl_folder(tmp_path, sd, _trainer("AutoEncoder", trainer_class="StandardTrainer"))
    sae = load_dictionary_learning(folder)
    assert sae.architecture == "relu" and sae.hook_layer == 20
    assert sae.info.hook_name == "resid_post_layer_19"
    assert sae.info.model_name == "Llama-3.1-8B-Instruct"
    assert sae.neuronpedia_url(4) == "https://www.neuronpedia.org/llama3.1-8b-it/19-resid-post-aa/4"
    x = torch.randn(6, 8)
    f = torch.relu((x - sd["bias"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
    assert torch.allclose(sae.encode(x), f, atol=1e-5)
    assert torch.allclose(sae(x), f @ sd["decoder.weight"].T + sd["bias"], atol=1e-5)
    assert isinstance(load_sae(str(folder / "ae.pt")), SAE)


def test_dictionary_learning_batch_topk(tmp_path):
    g = torch.Generator().manual_seed(1)
    sd = {**_linear_keys(8, 24, g), "b_dec": torch.randn(8, generator=g),
          "k": torch.tensor(4, dtype=torch.int), "threshold": torch.tensor(0.3)}
    folder = _dl_folder(tmp_path, sd, _trainer("BatchTopKSAE", k=4))
    sae = load_sae(str(folder))
    assert sae.architecture == "jumprelu" and sae.info.apply_b_dec_to_input
    x = torch.randn(10, 8)
    post = torch.relu((x - sd["b_dec"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
    f = post * (post > 0.3)
    assert torch.allclose(sae.encode(x), f, atol=1e-5)
    assert sae.info.extras["train_k"] == 4


def test_dictionary_learning_topk_and_jumprelu(tmp_path):
    g = torch.Generator().manual_seed(2)
    sd = {**_linear_keys(8, 24, g), "b_dec": torch.randn(8, generator=g),
          "k": torch.tensor(3, dtype=torch.int), "threshold": torch.tensor(-1.0)}
    folder = _dl_folder(tmp_path / "a", sd, _trainer("AutoEncoderTopK", k=3))
    sae = load_dictionary_learning(folder)
    x = torch.randn(10, 8)
    post = torch.relu((x - sd["b_dec"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
    top = post.topk(3, dim=-1)
    f = torch.zeros_like(post).scatter(-1, top.indices, top.values)
    assert sae.architecture == "topk" and sae.k == 3
    assert torch.allclose(sae.encode(x), f, atol=1e-5)

    jr = {"W_enc": torch.randn(8, 24, generator=g), "b_enc": torch.randn(24, generator=g),
          "W_dec": torch.randn(24, 8, generator=g), "b_dec": torch.randn(8, generator=g),
          "threshold": torch.rand(24, generator=g)}
    folder = _dl_folder(tmp_path / "b", jr, None, sub="run/resid_post_layer_5/trainer_0")
    sae = load_dictionary_learning(folder)  # class inferred from keys, layer from folder
    assert sae.hook_layer == 6 and not sae.info.apply_b_dec_to_input
    assert sae.neuronpedia_url(0) is None
    pre = x @ jr["W_enc"] + jr["b_enc"]
    assert torch.allclose(sae.encode(x), torch.relu(pre * (pre > jr["threshold"])), atol=1e-5)


def test_dictionary_learning_hub_path(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(4)
    sd = {**_linear_keys(8, 24, g), "b_dec": torch.randn(8, generator=g),
          "k": torch.tensor(4, dtype=torch.int), "threshold": torch.tensor(0.2)}
    folder = _dl_folder(tmp_path, sd, _trainer("BatchTopKSAE", k=4),
                        sub="snapshot/resid_post_layer_19/trainer_1")
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        return str(folder / Path(filename).name)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    sae = load_sae("andyrdt/saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1")
    assert calls == [
        ("andyrdt/saes-llama-3.1-8b-instruct", "resid_post_layer_19/trainer_1/config.json"),
        ("andyrdt/saes-llama-3.1-8b-instruct", "resid_post_layer_19/trainer_1/ae.pt"),
    ]
    assert sae.hook_layer == 20 and sae.architecture == "jumprelu"
    assert sae.info.source == "andyrdt/saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1"
    assert sae.neuronpedia_url(1) == "https://www.neuronpedia.org/llama3.1-8b-it/19-resid-post-aa/1"


def test_dictionary_learning_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dictionary_learning(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no ae.pt"):
        load_dictionary_learning(tmp_path / "empty")
    g = torch.Generator().manual_seed(3)
    sd = {**_linear_keys(8, 24, g), "b_dec": torch.randn(8, generator=g),
          "k": torch.tensor(3), "threshold": torch.tensor(0.1)}
    folder = _dl_folder(tmp_path / "amb", sd, None)
    with pytest.raises(UserError, match="AutoEncoderTopK or a BatchTopKSAE"):
        load_dictionary_learning(folder)
    folder = _dl_folder(tmp_path / "lay", {**sd}, _trainer("BatchTopKSAE", layer=5,
                                                           submodule_name=None))
    with pytest.raises(UserError, match="disagree"):
        load_dictionary_learning(folder)
    folder = _dl_folder(tmp_path / "gated", {**sd}, _trainer("GatedAutoEncoder"))
    with pytest.raises(UserError, match="GatedAutoEncoder"):
        load_dictionary_learning(folder)
    folder = _dl_folder(tmp_path / "size", {**sd}, _trainer("BatchTopKSAE", dict_size=99))
    with pytest.raises(UserError, match="dict_size=99"):
        load_dictionary_learning(folder)
    bad = tmp_path / "junk" / "resid_post_layer_1"
    bad.mkdir(parents=True)
    (bad / "ae.pt").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="cannot read"):
        load_dictionary_learning(bad)


def test_load_sae_dispatch_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_sae(str(tmp_path / "missing.npz"))
    (tmp_path / "weights.bin").write_bytes(b"1")
    with pytest.raises(UserError, match="unknown SAE file format"):
        load_sae(str(tmp_path / "weights.bin"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError, match="recognises"):
        load_sae(str(tmp_path / "dir"))
    with pytest.raises(UserError, match="prefix"):
        load_sae("someone/some-repo/some/folder")
    with pytest.raises(UserError, match="RELEASE/SAE_ID"):
        load_sae("saelens:only-release")
