"""Tests for refusal_atlas.judges.registry."""

from __future__ import annotations

import inspect

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.judges import (
    Judgement,
    SubstringJudge,
    WildGuardJudge,
    get_judge,
    judge_settings_model,
    register_judge,
    registry,
    validate_judge_options,
)


def test_registry():
    assert isinstance(get_judge("substring"), SubstringJudge)
    assert isinstance(get_judge("Substring", extra_phrases=["nope"]), SubstringJudge)
    wg = get_judge("wildguard", backend="vllm", model="some/model")
    assert isinstance(wg, WildGuardJudge) and wg.backend == "vllm" and wg.model_name == "some/model"
    assert wg._model is None and wg._tokenizer is None  # nothing loaded yet
    with pytest.raises(UserError, match="substring.*wildguard"):
        get_judge("llamaguard")
    with pytest.raises(UserError, match="Bad options"):
        get_judge("substring", colour="red")

    class Always:
        name = "always"
        approximate = True

        def judge(self, prompts, responses):
            return [Judgement(True, "", self.name) for _ in responses]

    register_judge("always-test", Always)
    try:
        assert get_judge("always-test").judge(["a"], ["b"])[0].refused is True
        with pytest.raises(ValueError):
            register_judge("always-test", Always)
    finally:
        registry._REGISTRY.pop("always-test", None)


def test_unknown_option_is_one_clear_user_error():
    with pytest.raises(UserError) as err:
        get_judge("wildguard", modle="x", batch_size=4)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown option 'modle'" in message
    assert "valid options: model, backend, batch_size" in message
    with pytest.raises(UserError, match="Bad options for judge 'substring'.*phrases_file"):
        get_judge("substring", phrase=["nope"])
    with pytest.raises(UserError, match="max_new_tokens") as err:
        get_judge("wildguard", max_new_tokens="many")
    assert "\n" not in str(err.value)


def test_settings_models():
    assert judge_settings_model("substring") is SubstringJudge.Settings
    assert judge_settings_model("WildGuard") is WildGuardJudge.Settings
    with pytest.raises(UserError, match="Unknown judge"):
        judge_settings_model("llamaguard")
    # Options stay as given (they are fingerprint inputs); only set ones are passed on.
    assert validate_judge_options("wildguard", {"batch_size": 4}) == {"batch_size": 4}
    assert validate_judge_options("substring", {}) == {}


@pytest.mark.parametrize("judge_class", [SubstringJudge, WildGuardJudge])
def test_settings_mirror_the_constructor(judge_class):
    params = {
        name: p.default
        for name, p in inspect.signature(judge_class.__init__).parameters.items()
        if name != "self"
    }
    fields = {name: f.default for name, f in judge_class.Settings.model_fields.items()}
    assert fields == params


def test_judge_without_settings_gets_options_as_given():
    class Plain:
        name = "plain"
        approximate = True

        def __init__(self, colour="red"):
            self.colour = colour

        def judge(self, prompts, responses):
            return [Judgement(False, "", self.name) for _ in responses]

    register_judge("plain-test", Plain)
    try:
        assert judge_settings_model("plain-test") is None
        assert get_judge("plain-test", colour="blue").colour == "blue"
        with pytest.raises(UserError, match="Bad options"):
            get_judge("plain-test", size=3)
    finally:
        registry._REGISTRY.pop("plain-test", None)
