"""dictionary_learning checkpoints (ae.pt + config.json), local and from the hub."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.sae import (
    SAE,
    load_dictionary_learning,
    load_sae,
)


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
