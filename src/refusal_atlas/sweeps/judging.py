"""Judging a sweep's rows: inline for instant judges, a resumable second pass for slow ones.

Instant judges (substring, or any judge with ``inline = True``) judge each batch as it
finishes. Slow ones (WildGuard) run as a second pass over ``responses.jsonl`` that judges
each distinct response once, so a kill between generation and judging loses nothing.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import UserError
from ..judges import SubstringJudge
from ..labels import assign_label
from ..progress import progress_bar
from .prompts import SweepPrompt
from .store import ResultsStore

JUDGE_FIELDS = ("judge", "refused", "label", "judge_raw", "parse_error", "approximate")
"""The keys a judgement adds to a response row."""


def judges_inline(judge, mode: str) -> bool:
    """Whether ``judge`` judges each batch inline (``mode``: auto, inline or two_pass)."""
    if mode not in ("auto", "inline", "two_pass"):
        raise UserError(f"judge mode must be auto, inline or two_pass, got {mode!r}")
    if mode != "auto":
        return mode == "inline"
    return isinstance(judge, SubstringJudge) or bool(getattr(judge, "inline", False))


def with_judgement(row: Mapping[str, Any], j) -> dict:
    """A response row with judgement ``j`` added (the label after the intervention too)."""
    return {**row, "judge": j.judge, "refused": j.refused,
            "label": assign_label(row["harmful"], j.refused),
            "judge_raw": j.raw, "parse_error": bool(j.parse_error or j.refused is None),
            "approximate": bool(j.approximate)}


def strip_judgement(row: Mapping[str, Any]) -> dict:
    """A judged row back to its response row."""
    return {k: v for k, v in row.items() if k not in JUDGE_FIELDS}


def judge_pass(judge, store: ResultsStore, pending: list[dict], by_id: Mapping[str, SweepPrompt],
               chunk: int, description: str) -> None:
    """Judge each distinct (generated condition, prompt, response) once; append every alias.

    Args:
        judge: the judge.
        store: where the judged rows are appended (``results.jsonl``), ``chunk`` at a time.
        pending: response rows (or rows judged by another judge, stripped) to judge.
        by_id: the prompts, by id.
        chunk: rows per call of the judge.
        description: progress bar label.
    """
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in pending:
        groups.setdefault((row.get("generated_as", row["condition"]), row["prompt_id"],
                           row["response"]), []).append(row)
    keys = list(groups)
    with progress_bar(f"{description}: judge ({judge.name})", total=len(keys), unit="rows") as bar:
        for s in range(0, len(keys), chunk):
            part = keys[s:s + chunk]
            verdicts = judge.judge([by_id[k[1]].text for k in part], [k[2] for k in part])
            if len(verdicts) != len(part):
                raise RuntimeError(f"judge {judge.name} returned {len(verdicts)} verdicts for "
                                   f"{len(part)} rows")
            out = []
            for k, j in zip(part, verdicts):
                out.extend(with_judgement(strip_judgement(r), j) for r in groups[k])
            store.append(store.results_path, out)
            bar.advance(len(part))
