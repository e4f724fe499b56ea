"""What every judge shares: the :class:`Judgement` record, the :class:`Judge` protocol and
the base of each judge's settings model.

Every judge takes parallel lists of prompts and responses and returns one
:class:`Judgement` per row. ``refused`` is ``True`` / ``False``, or ``None`` when the
judge's output could not be parsed (``parse_error=True``); a parse error is never
silently counted as compliance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..errors import UserError

__all__ = ["Judge", "JudgeSettings", "Judgement", "check_lengths"]


@dataclass(frozen=True)
class Judgement:
    """One judge's verdict on one (prompt, response) row.

    ``refused`` is ``None`` only when ``parse_error`` is true. ``raw`` is the judge's raw
    output (for the substring judge: the matched phrase, or ``""``).
    ``harmful_request`` / ``harmful_response`` are WildGuard's other two answers
    (``"yes"``, ``"no"`` or ``"n/a"``), ``None`` for other judges or on a parse error.
    ``approximate`` is true for judges that are only an approximation (substring).
    """

    refused: bool | None
    raw: str
    judge: str
    parse_error: bool = False
    harmful_request: str | None = None
    harmful_response: str | None = None
    approximate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "refused": self.refused,
            "raw": self.raw,
            "judge": self.judge,
            "parse_error": self.parse_error,
            "harmful_request": self.harmful_request,
            "harmful_response": self.harmful_response,
            "approximate": self.approximate,
        }


@runtime_checkable
class Judge(Protocol):
    """Anything that labels responses as refusals.

    A judge whose refusal verdict is settled once a phrase appears (the substring judge)
    also has ``settling_phrases`` (lower-cased, apostrophes normalised): generation for it
    may stop a row there. Judges that read the whole response have none.
    """

    name: str
    approximate: bool

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Judgement]: ...


class JudgeSettings(BaseModel):
    """Base of a judge's ``Settings``: the options ``get_judge(name, **options)`` accepts.

    A judge class declares its options as a nested ``Settings(JudgeSettings)`` whose
    fields mirror its constructor's keyword arguments (same names and defaults); an
    option it does not declare is an error.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def check_lengths(prompts: Sequence[str], responses: Sequence[str]) -> None:
    """Raise a :class:`UserError` unless there is one prompt per response."""
    if len(prompts) != len(responses):
        raise UserError(
            f"A judge needs one prompt per response (got {len(prompts)} prompts and "
            f"{len(responses)} responses)."
        )
