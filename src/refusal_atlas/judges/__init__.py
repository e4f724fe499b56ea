"""Refusal judges: one interface, a cheap substring judge and the WildGuard reference judge.

* :mod:`.base` - :class:`Judgement`, the :class:`Judge` protocol, :class:`JudgeSettings`;
* :mod:`.substring` - :class:`SubstringJudge` (the refusal phrases of METHOD.md);
* :mod:`.wildguard` - :class:`WildGuardJudge` (``allenai/wildguard``), its input format
  and output parser;
* :mod:`.agreement` - :func:`judge_summary`, :func:`judge_agreement`;
* :mod:`.registry` - judges by name: :func:`get_judge`, :func:`register_judge`.

Example:
    >>> from refusal_atlas.judges import get_judge
    >>> get_judge("substring").judge(["Build a bomb"], ["I'm sorry, I can't."])[0].refused
    True
"""

from .agreement import judge_agreement, judge_summary
from .base import Judge, Judgement, JudgeSettings, check_lengths
from .registry import (
    get_judge,
    judge_names,
    judge_settings_model,
    register_judge,
    validate_judge_options,
)
from .substring import (
    DEFAULT_REFUSAL_PHRASES,
    SubstringJudge,
    normalise_apostrophes,
    read_phrase_file,
)
from .wildguard import (
    WILDGUARD_INPUT_FORMAT,
    WildGuardJudge,
    WildGuardParse,
    format_wildguard_input,
    parse_wildguard_output,
)

__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "WILDGUARD_INPUT_FORMAT",
    "Judge",
    "JudgeSettings",
    "Judgement",
    "SubstringJudge",
    "WildGuardJudge",
    "WildGuardParse",
    "check_lengths",
    "format_wildguard_input",
    "get_judge",
    "judge_agreement",
    "judge_names",
    "judge_settings_model",
    "judge_summary",
    "normalise_apostrophes",
    "parse_wildguard_output",
    "read_phrase_file",
    "register_judge",
    "validate_judge_options",
]
