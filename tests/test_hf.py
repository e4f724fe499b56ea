"""Tests for refusal_atlas.hf (the shared Hugging Face loader)."""

from __future__ import annotations

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.hf import (
    canonical_dtype,
    load_causal_lm,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
)


def test_dtype_names():
    assert canonical_dtype("BF16") == "bfloat16" and canonical_dtype("half") == "float16"
    assert canonical_dtype("auto") == "auto"
    with pytest.raises(UserError, match="unknown dtype"):
        canonical_dtype("int3")


def test_resolve_dtype_defaults():
    # None is the judges' default: bf16 on CUDA, fp32 elsewhere (never the CPU probe).
    assert resolve_dtype(None, "cpu") is torch.float32
    assert resolve_dtype(None, "cuda:0") is torch.bfloat16
    assert resolve_dtype("fp16", "cpu") is torch.float16
    assert resolve_dtype(torch.float64) is torch.float64
    assert resolve_dtype("auto", "cpu") in (torch.bfloat16, torch.float32)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) in ("cpu", "cuda")


def test_load_causal_lm_folder(tiny_model_dirs):
    tok, model = load_causal_lm(tiny_model_dirs["llama"], dtype="float32", device="cpu")
    assert next(model.parameters()).dtype is torch.float32
    assert not model.training  # eval mode
    kept = load_causal_lm(tiny_model_dirs["llama"], dtype="bf16", device="cpu", tokenizer=tok)
    assert kept.tokenizer is tok and next(kept.model.parameters()).dtype is torch.bfloat16


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(UserError) as err:
        load_causal_lm(tmp_path / "missing", error="Cannot load the X", hint="Try Y.")
    message = str(err.value)
    assert message.startswith("Cannot load the X (") and message.endswith(". Try Y.")
    assert "\n" not in message
    with pytest.raises(UserError, match="cannot load tokenizer"):
        load_tokenizer(tmp_path / "missing")


def test_custom_code_error(monkeypatch):
    import transformers

    def needs_code(*args, **kwargs):
        raise ValueError("... set the option `trust_remote_code=True` to remove this error.")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", needs_code)
    with pytest.raises(UserError, match="needs custom code; pass --trust-remote-code"):
        load_causal_lm("some/model")


# --------------------------------------------------------------------------- devices
# Issue 10: `--device cuda` on a machine without CUDA ended in an AssertionError traceback.


def test_cuda_without_cuda_is_one_line(monkeypatch):
    from refusal_atlas.hf import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(UserError, match=r"is not available \(torch.cuda.is_available\(\) is "
                                            r"False\); use --device cpu"):
            check_device(device)
        with pytest.raises(UserError, match="not available"):
            resolve_device(device)
    assert check_device("cpu") == "cpu" and check_device("cpu:0") == "cpu:0"


def test_cuda_index_beyond_the_devices_and_unknown_devices(monkeypatch):
    from refusal_atlas.hf import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda") == "cuda" and check_device("cuda:0") == "cuda:0"
    with pytest.raises(UserError, match="cuda:3 does not exist: this machine has 1 CUDA"):
        check_device("cuda:3")
    for bad in ("gpu", "cuda:x", ""):
        with pytest.raises(UserError, match="unknown device"):
            check_device(bad)
    with pytest.raises(UserError, match="not supported"):
        check_device("meta")


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_device_is_cuda_when_there_is_one(monkeypatch, cuda):
    from refusal_atlas.hf import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert check_device("auto") == check_device(" AUTO ") == ("cuda" if cuda else "cpu")


def test_device_map_is_passed_and_the_model_not_moved(tiny_model_dirs, monkeypatch):
    import transformers

    from refusal_atlas.hf import load_causal_lm

    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        kwargs.pop("device_map")  # no accelerate here: load as usual, only record the knob
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    _, model = load_causal_lm(tiny_model_dirs["qwen2"], dtype="float32", device="cpu",
                              device_map="auto")
    assert seen["device_map"] == "auto" and not model.training


def test_load_model_checks_the_device_before_loading(tiny_model_dirs, monkeypatch):
    from refusal_atlas import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(UserError, match="device cuda is not available") as err:
        models.load_model(str(tiny_model_dirs["llama"]), device="cuda")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- strict loads
# Issue 10: a checkpoint lacking a tensor loaded with that tensor initialised at random
# (transformers only warned), and the model produced fluent garbage ("Author Author ...").


def _without_embedding(src, dst):
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    del weights["model.embed_tokens.weight"]
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_strict_load_refuses_missing_weights(tiny_model_dirs, tmp_path):
    import io
    import logging

    folder = _without_embedding(tiny_model_dirs["llama"], tmp_path / "no_embedding")
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger("transformers").addHandler(handler)  # it does not propagate to root
    try:
        with pytest.raises(UserError) as err:
            load_causal_lm(folder, dtype="float32", device="cpu", strict=True)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    message = str(err.value)
    assert "\n" not in message
    assert "1 weight(s) missing (would be initialised at random): model.embed_tokens.weight" \
        in message
    assert "LOAD REPORT" not in logged.getvalue()  # the table became the error
    # non-strict loads (the judges) keep transformers' behaviour
    load_causal_lm(folder, dtype="float32", device="cpu")


def test_strict_load_refuses_unexpected_weights(tiny_model_dirs, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "extra"
    shutil.copytree(tiny_model_dirs["llama"], folder)
    weights = load_file(folder / "model.safetensors")
    weights["model.layers.9.mlp.up_proj.weight"] = weights["model.layers.0.mlp.up_proj.weight"]
    save_file({k: v.clone() for k, v in weights.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(UserError, match="not used by the architecture: model.layers.9"):
        load_causal_lm(folder, dtype="float32", device="cpu", strict=True)


def test_strict_load_refuses_weights_of_the_wrong_shape(tiny_model_dirs, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "shape"
    shutil.copytree(tiny_model_dirs["llama"], folder)
    weights = load_file(folder / "model.safetensors")
    norm = "model.layers.0.input_layernorm.weight"
    weights[norm] = torch.ones(weights[norm].shape[0] + 1)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UserError, match=f"1 weight\\(s\\) of the wrong shape: {norm}") as err:
        load_causal_lm(folder, dtype="float32", device="cpu", strict=True)
    assert "\n" not in str(err.value)


def test_load_model_refuses_a_folder_without_the_embedding(tiny_model_dirs, tmp_path):
    from refusal_atlas.models import load_model

    folder = _without_embedding(tiny_model_dirs["llama"], tmp_path / "no_embedding")
    with pytest.raises(UserError, match="missing .*model.embed_tokens.weight") as err:
        load_model(str(folder), dtype="float32")
    assert "\n" not in str(err.value)
