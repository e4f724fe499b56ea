"""The style classifier a configuration asks for: the rules, or an LLM on a backend."""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from .backends import HFChatBackend, OpenAICompatBackend
from .llm import LLMStyleClassifier
from .rules import RuleStyleClassifier

__all__ = ["make_classifier"]


def make_classifier(cfg: Any) -> RuleStyleClassifier | LLMStyleClassifier:
    """The classifier of a ``style`` config section.

    Args:
        cfg: the config's ``style`` section: ``classifier`` (``rules`` or ``llm``); for
            ``llm`` a backend, ``style.openai`` (:class:`OpenAICompatBackend.Settings`) or
            ``style.hf`` (:class:`HFChatBackend.Settings`), chosen by ``style.backend``
            (default: openai when it is configured); ``prompt_file``.
    """
    if cfg.classifier == "rules":
        return RuleStyleClassifier()
    backend = cfg.backend or ("openai" if cfg.openai is not None else "hf")
    settings = cfg.openai if backend == "openai" else cfg.hf
    if settings is None:
        raise UserError("style.classifier=llm needs style.hf.model_name_or_path (a local Hugging "
                        "Face chat model) or style.openai.base_url + style.openai.model (an "
                        "OpenAI-compatible API)")
    cls = OpenAICompatBackend if backend == "openai" else HFChatBackend
    return LLMStyleClassifier(cls(**settings.model_dump(exclude_unset=True)),
                              prompt_file=cfg.prompt_file)
