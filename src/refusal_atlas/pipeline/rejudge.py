"""``refusal-atlas rejudge``: a finished sweep stage of a run folder, judged by a second judge.

Finds the stage's results, the prompt texts (in each row; rows of older runs carry none and
take them from the run's prompt snapshot) and calls :func:`sweeps.rejudge_rows`, which
writes ``<stage>/rejudge/<judge>/``.
"""

from __future__ import annotations

from pathlib import Path

from ..data import read_suite_snapshot
from ..errors import UserError
from ..sweeps import RESULTS_FILE, ResultsStore, SweepPrompt, rejudge_rows
from .runfolder import RunFolder

REJUDGE_STAGES = {"steering": "steer", "ablation": "ablate"}
"""Stages that can be re-judged -> the command that runs them."""


def _prompts_from_rows(rows: list[dict], stage_dir: Path) -> dict[str, SweepPrompt]:
    """Prompt texts for re-judging: stored in each row (older rows: the run's suite snapshot)."""
    out: dict[str, SweepPrompt] = {}
    need = [r for r in rows if "prompt" not in r]
    by_id = {}
    if need:
        snapshot = stage_dir.parent / "prompts"
        if not (snapshot / "prompts.jsonl").exists():
            raise UserError(f"cannot re-judge {stage_dir}: its rows carry no prompt text and the "
                            f"run's prompt snapshot {snapshot} is missing")
        by_id = read_suite_snapshot(snapshot).by_id()
    for r in rows:
        pid = r["prompt_id"]
        if pid in out:
            continue
        text = r.get("prompt")
        if text is None:
            if pid not in by_id:
                raise UserError(f"prompt {pid!r} of {stage_dir} is not in the run's suite")
            text = by_id[pid].text
        out[pid] = SweepPrompt(pid, text, bool(r["harmful"]), r.get("group"), r.get("split", ""))
    return out


def rejudge_stage(run_dir: str | Path, stage: str, judge, *, chunk: int = 256) -> dict:
    """Judge the finished sweep ``stage`` of ``run_dir`` with ``judge``; returns the agreement.

    Args:
        run_dir: the run folder.
        stage: ``steering`` or ``ablation``.
        judge: the second judge.
        chunk: rows per judge call.

    Example::

        agreement = rejudge_stage(run, "steering", get_judge("wildguard"))
    """
    run_dir = Path(run_dir)
    if stage not in REJUDGE_STAGES:
        raise UserError(f"--stage must be steering or ablation, not {stage!r}")
    run = RunFolder(run_dir)
    folder = run.dir(stage)
    if run.done_marker(stage) is None:
        raise UserError(f"{run_dir} has no finished {stage} sweep: run `refusal-atlas "
                        f"{REJUDGE_STAGES[stage]} --out {run_dir}` first")
    primary = list(ResultsStore(folder).judged().values())
    if not primary:
        raise UserError(f"{folder} has no judged results ({RESULTS_FILE}) to re-judge")
    if judge.name == primary[0]["judge"]:
        raise UserError(f"the results in {folder} are already judged by {judge.name!r}; "
                        "choose another judge")
    return rejudge_rows(primary, _prompts_from_rows(primary, folder), judge,
                        folder / "rejudge" / judge.name, chunk=chunk)
