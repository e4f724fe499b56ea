"""Re-judging a finished sweep's rows with a second judge, and how often the two agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..artifacts import write_json
from ..errors import UserError
from ..judges import Judgement, judge_agreement
from .judging import judge_pass, strip_judgement
from .prompts import SweepPrompt
from .store import ResultsStore
from .summary import sweep_metrics

AGREEMENT_FILE = "agreement.json"
METRICS_FILE = "metrics.json"


def _as_judgements(rows: Sequence[Mapping[str, Any]]) -> list[Judgement]:
    return [Judgement(refused=r["refused"], raw=r.get("judge_raw", ""), judge=r["judge"],
                      parse_error=bool(r.get("parse_error"))) for r in rows]


def rejudge_rows(rows: Sequence[Mapping[str, Any]], prompts: Mapping[str, SweepPrompt], judge,
                 folder: str | Path, *, description: str = "rejudge", chunk: int = 256) -> dict:
    """Judge a sweep's judged ``rows`` again with ``judge``; agreement with the first judge.

    Writes into ``folder``: ``results.jsonl`` (the second judge's rows; resumable),
    ``metrics.json`` (the sweep's metrics under the second judge) and ``agreement.json``
    (overall and per condition, via :func:`judges.judge_agreement`).

    Args:
        rows: the sweep's judged rows, all by one judge (``ResultsStore.judged()``).
        prompts: ``{prompt id: SweepPrompt}`` for every row's prompt.
        judge: the second judge; must differ from the rows' judge.
        folder: the second judge's results store.
        description: progress bar label.
        chunk: rows per judge call.

    Returns:
        The agreement: ``judge_a``, ``judge_b``, ``overall``, ``per_condition``.

    Example::

        rows = list(ResultsStore(run / "steering").judged().values())
        agreement = rejudge_rows(rows, prompts, get_judge("wildguard"), out_dir)
    """
    if not rows:
        raise UserError("there are no judged rows to re-judge")
    first = rows[0]["judge"]
    if judge.name == first:
        raise UserError(f"the rows are already judged by {judge.name!r}; choose another judge")
    folder = Path(folder)
    store = ResultsStore(folder)
    done = store.judged(judge.name)
    pending = [strip_judgement(r) for r in rows if ResultsStore.key(r) not in done]
    if pending:
        judge_pass(judge, store, pending, prompts, chunk, description)
        done = store.judged(judge.name)
    second = [done[ResultsStore.key(r)] for r in rows]

    overall = judge_agreement(_as_judgements(rows), _as_judgements(second))
    overall.pop("excluded_rows", None)
    per_condition = {}
    for cid in dict.fromkeys(r["condition"] for r in rows):
        idx = [i for i, r in enumerate(rows) if r["condition"] == cid]
        agr = judge_agreement(_as_judgements([rows[i] for i in idx]),
                              _as_judgements([second[i] for i in idx]))
        per_condition[cid] = {k: agr[k] for k in ("n", "agreement", "kappa", "refusal_rate_a",
                                                  "refusal_rate_b", "excluded")}
    agreement = {"judge_a": first, "judge_b": judge.name, "overall": overall,
                 "per_condition": per_condition}
    write_json(folder / AGREEMENT_FILE, agreement)
    write_json(folder / METRICS_FILE, sweep_metrics(second, judge))
    return agreement
