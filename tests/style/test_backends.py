"""Tests for refusal_atlas.style.backends (OpenAI-compatible endpoint, local HF chat model)."""

from __future__ import annotations

import inspect
import re
import socket
from pathlib import Path

import pytest
import torch
from conftest import CHATML_TEMPLATE, write_chat_tokenizer

from refusal_atlas.errors import UserError
from refusal_atlas.style import (
    DEFAULT_STYLE_PROMPT,
    STYLES,
    UNPARSED,
    HFChatBackend,
    LLMStyleClassifier,
    OpenAICompatBackend,
)

CHAT_TEMPLATE = CHATML_TEMPLATE


def test_openai_backend_errors(fake_server):
    base_url, _ = fake_server
    with pytest.raises(UserError, match="HTTP 500.*model exploded"):
        OpenAICompatBackend(base_url, model="broken").complete("hi", 10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="Cannot reach"):
        OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", model="m", timeout=2).complete("hi", 10)


# ---------------------------------------------------------------------------
# LLM classifier with a tiny local HF chat model (generation monkeypatched)
# ---------------------------------------------------------------------------


def _write_tokenizer(folder: Path) -> None:
    write_chat_tokenizer(folder, [DEFAULT_STYLE_PROMPT] * 20)


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory) -> HFChatBackend:
    """An HFChatBackend on a tiny random Qwen2 chat model with a real tokenizer (loaded once)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny_chat")
    _write_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    backend = HFChatBackend(str(folder), device="cpu")
    assert backend._model is None  # lazy
    backend._load()
    return backend


def test_llm_classifier_hf_backend(tiny_chat, monkeypatch):
    backend = tiny_chat
    tok, model = backend._tokenizer, backend._model
    seen = []

    def fake_generate(input_ids, attention_mask, max_new_tokens, do_sample, pad_token_id, **kw):
        text = tok.decode(input_ids[0])
        seen.append((text, max_new_tokens, do_sample))
        ids = re.findall(r"^(\d+)\t", text, flags=re.MULTILINE)
        answer = "\n".join(f"{i}\t{STYLES[int(i) % len(STYLES)]}" for i in ids)
        new = tok(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return torch.cat([input_ids, new, torch.tensor([[tok.eos_token_id]])], dim=1)

    monkeypatch.setattr(model, "generate", fake_generate)
    labels = LLMStyleClassifier(backend, batch_size=3).classify(["a", "b", "c", "d"])
    assert [x.style for x in labels] == ["SAFETY", "UNDERSPEC", "GENERIC", "NONREFUSAL"]
    folder_name = Path(backend.model_name_or_path).name
    assert labels[0].classifier == f"llm:hf:{folder_name}"
    assert len(seen) == 2 and all(do_sample is False for _, _, do_sample in seen)
    text = seen[0][0]
    assert "<|im_start|>user\n" in text and text.endswith(
        "<|im_start|>assistant\n"
    )  # chat template
    assert "1\ta\n2\tb\n3\tc" in text


def test_hf_backend_real_generation_is_unparsed(tiny_chat, monkeypatch):
    # The random tiny model writes garbage: every response ends up UNPARSED, none defaulted.
    monkeypatch.setattr(tiny_chat, "max_new_tokens", 3)
    clf = LLMStyleClassifier(tiny_chat)
    labels = clf.classify(["I can't.", "Sure."])
    assert [x.style for x in labels] == [UNPARSED, UNPARSED]
    assert clf.last_stats["unparsed"] == 2 and clf.last_stats["requests"] == 2


def test_hf_backend_load_error(tmp_path):
    with pytest.raises(UserError, match="Cannot load"):
        HFChatBackend(str(tmp_path / "nothing")).complete("hi", 5)




@pytest.mark.parametrize("backend_class", [HFChatBackend, OpenAICompatBackend])
def test_settings_mirror_the_constructor(backend_class):
    params = {
        name: p.default
        for name, p in inspect.signature(backend_class.__init__).parameters.items()
        if name != "self"
    }
    fields = {
        name: (inspect.Parameter.empty if f.is_required() else f.default)
        for name, f in backend_class.Settings.model_fields.items()
    }
    assert fields == params
    with pytest.raises(ValueError, match="extra"):
        backend_class.Settings(colour="red")
