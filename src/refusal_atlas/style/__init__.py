"""Refusal style: how a (steered) refusal is framed.

* :mod:`.labels` - the five styles (:data:`STYLES`) and :class:`StyleLabel`;
* :mod:`.rules` - :class:`RuleStyleClassifier`, offline and transparent
  (:func:`explain_rules` prints the table);
* :mod:`.llm` - :class:`LLMStyleClassifier`, a chat model labelling batches;
* :mod:`.backends` - its chat backends (:class:`HFChatBackend`, :class:`OpenAICompatBackend`);
* :mod:`.classifier` - :func:`make_classifier` from the config's ``style`` section;
* :mod:`.summary` - :func:`style_summary` (dominant style, purity), :func:`summarize`.

Example:
    >>> from refusal_atlas.style import RuleStyleClassifier
    >>> RuleStyleClassifier().classify(["I'm sorry, but that is illegal."])[0].style
    'SAFETY'
"""

from .backends import BackendSettings, ChatBackend, HFChatBackend, OpenAICompatBackend
from .classifier import make_classifier
from .labels import REFUSAL_STYLES, STYLES, UNPARSED, StyleLabel
from .llm import (
    DEFAULT_STYLE_PROMPT,
    LLMStyleClassifier,
    build_style_prompt,
    format_batch_lines,
    parse_style_lines,
)
from .rules import CUES, REFUSAL_PATTERNS, WEAK_CUES, RuleStyleClassifier, explain_rules
from .summary import steered_refusals, style_summary, summarize

__all__ = [
    "CUES",
    "DEFAULT_STYLE_PROMPT",
    "REFUSAL_PATTERNS",
    "REFUSAL_STYLES",
    "STYLES",
    "UNPARSED",
    "WEAK_CUES",
    "BackendSettings",
    "ChatBackend",
    "HFChatBackend",
    "LLMStyleClassifier",
    "OpenAICompatBackend",
    "RuleStyleClassifier",
    "StyleLabel",
    "build_style_prompt",
    "explain_rules",
    "format_batch_lines",
    "make_classifier",
    "parse_style_lines",
    "steered_refusals",
    "style_summary",
    "summarize",
]
