"""Tests for refusal_atlas.style.classifier (the classifier a style config asks for)."""

from __future__ import annotations

import pytest

from refusal_atlas.config import load_config
from refusal_atlas.errors import UserError
from refusal_atlas.style import (
    HFChatBackend,
    LLMStyleClassifier,
    OpenAICompatBackend,
    RuleStyleClassifier,
    make_classifier,
)


def _style(*values):
    return load_config(set_values=list(values)).style


def test_rules_by_default():
    assert isinstance(make_classifier(_style()), RuleStyleClassifier)


def test_llm_backends():
    local = make_classifier(_style("style.classifier=llm",
                                   "style.hf.model_name_or_path=some/chat-model"))
    assert isinstance(local, LLMStyleClassifier) and isinstance(local.backend, HFChatBackend)
    assert local.backend._model is None  # nothing loaded yet
    remote = make_classifier(_style("style.classifier=llm", "style.openai.model=m",
                                    "style.openai.base_url=http://localhost:1/v1"))
    assert isinstance(remote.backend, OpenAICompatBackend)
    assert remote.backend.api_key_env == "OPENAI_API_KEY"


def test_llm_needs_a_model():
    with pytest.raises(UserError, match="style.hf.model_name_or_path"):
        make_classifier(_style("style.classifier=llm"))
    with pytest.raises(UserError, match="style.openai.model: Field required"):
        make_classifier(_style("style.classifier=llm", "style.openai.base_url=http://localhost:1/v1"))


def test_flat_llm_keys_of_older_configs_still_work():
    """style.llm_model / endpoint / api_key_env (before the per-backend sections)."""
    local = make_classifier(_style("style.classifier=llm", "style.llm_model=some/chat-model"))
    assert isinstance(local.backend, HFChatBackend)
    remote = make_classifier(_style("style.classifier=llm", "style.llm_model=m",
                                    "style.endpoint=http://localhost:1/v1",
                                    "style.api_key_env=MY_KEY"))
    assert isinstance(remote.backend, OpenAICompatBackend)
    assert remote.backend.api_key_env == "MY_KEY"
    with pytest.raises(UserError, match="style.openai.model"):
        _style("style.classifier=llm", "style.endpoint=http://localhost:1/v1")


def test_a_backend_option_it_does_not_have_is_one_line():
    with pytest.raises(UserError, match="style.hf.temperature: unknown key"):
        _style("style.hf.model_name_or_path=x", "style.hf.temperature=0.3")


def test_judge_name_and_options_are_checked_when_the_config_loads():
    with pytest.raises(UserError, match="Unknown judge 'nope'"):
        load_config(set_values=["labels.judge=nope"])
    with pytest.raises(UserError, match="unknown option 'colour'"):
        load_config(set_values=["steering.judge_options={colour: red}"])
