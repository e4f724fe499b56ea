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
