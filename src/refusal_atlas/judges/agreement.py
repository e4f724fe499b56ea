"""Summaries of one judge's verdicts and the agreement of two judges on the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from .base import Judgement

__all__ = ["judge_agreement", "judge_summary"]


def judge_summary(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """Counts: ``n``, ``refused``, ``complied``, ``parse_errors``; plus ``refusal_rate``
    (refused / parsed rows, ``None`` if none parsed), the judge name(s) and whether any
    judge was approximate.

    Args:
        judgements: one judge's (or several judges') verdicts.
    """
    n = len(judgements)
    refused = sum(1 for j in judgements if j.refused is True)
    complied = sum(1 for j in judgements if j.refused is False)
    errors = sum(1 for j in judgements if j.parse_error or j.refused is None)
    parsed = refused + complied
    return {
        "n": n,
        "refused": refused,
        "complied": complied,
        "parse_errors": errors,
        "refusal_rate": refused / parsed if parsed else None,
        "judges": sorted({j.judge for j in judgements}),
        "approximate": any(j.approximate for j in judgements),
    }


def judge_agreement(a: Sequence[Judgement], b: Sequence[Judgement]) -> dict[str, Any]:
    """Agreement of two judges on the same rows (row i of ``a`` and ``b`` = same response).

    Rows where either judge has a parse error are excluded (``excluded_rows`` lists their
    indices). ``confusion`` counts ``both_refused``, ``a_only`` (a refused, b complied),
    ``b_only`` and ``neither``. ``kappa`` is Cohen's kappa; ``None`` when undefined
    (no rows, or both judges give one and the same label everywhere).

    Args:
        a: the first judge's verdicts.
        b: the second judge's verdicts on the same rows, in the same order.

    Example:
        >>> judge_agreement(wildguard.judge(prompts, responses),  # doctest: +SKIP
        ...                 SubstringJudge().judge(prompts, responses))["kappa"]
    """
    if len(a) != len(b):
        raise UserError(
            f"Judge agreement needs the same rows from both judges (got {len(a)} and {len(b)})."
        )
    excluded = [i for i, (x, y) in enumerate(zip(a, b)) if x.refused is None or y.refused is None]
    pairs = [
        (x.refused, y.refused)
        for x, y in zip(a, b)
        if x.refused is not None and y.refused is not None
    ]
    both = sum(1 for x, y in pairs if x and y)
    a_only = sum(1 for x, y in pairs if x and not y)
    b_only = sum(1 for x, y in pairs if y and not x)
    neither = sum(1 for x, y in pairs if not x and not y)
    n = len(pairs)
    agreement = (both + neither) / n if n else None
    kappa = None
    if n:
        pa, pb = (both + a_only) / n, (both + b_only) / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        if pe < 1:
            kappa = (agreement - pe) / (1 - pe)
    return {
        "judge_a": sorted({j.judge for j in a}),
        "judge_b": sorted({j.judge for j in b}),
        "n_rows": len(a),
        "n": n,
        "agreement": agreement,
        "kappa": kappa,
        "confusion": {"both_refused": both, "a_only": a_only, "b_only": b_only, "neither": neither},
        "refusal_rate_a": (both + a_only) / n if n else None,
        "refusal_rate_b": (both + b_only) / n if n else None,
        "parse_errors_a": sum(1 for j in a if j.refused is None),
        "parse_errors_b": sum(1 for j in b if j.refused is None),
        "excluded": len(excluded),
        "excluded_rows": excluded,
    }
