"""The ``samples`` section: the same few test prompts' responses under every condition of
each sweep."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...artifacts import read_jsonl
from .common import not_run

__all__ = ["GROUP_ORDER", "SWEEP_STAGES", "samples_section"]

SWEEP_STAGES = ("steering", "ablation", "sae_steering")
GROUP_ORDER = ("HR", "HC", "BR", "BC")


def _pick_prompts(rows: Sequence[Mapping[str, Any]], n: int) -> list[str]:
    """n prompt ids spread over the base labels (HR, HC, BR, BC round-robin), by id."""
    by_group: dict[str, list[str]] = {}
    for r in rows:
        g = r.get("group") if r.get("group") in GROUP_ORDER else "?"
        lst = by_group.setdefault(g, [])
        if r["prompt_id"] not in lst:
            lst.append(r["prompt_id"])
    buckets = [sorted(by_group.get(g, [])) for g in (*GROUP_ORDER, "?")]
    out: list[str] = []
    while len(out) < n and any(buckets):
        for b in buckets:
            if b and len(out) < n:
                out.append(b.pop(0))
    return out


def samples_section(run_dir: Path, states: Mapping[str, dict], n: int) -> dict:
    """Per sweep stage and condition, the responses to the same ``n`` test prompts.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
        n: prompts shown per condition (0: the section says it is not shown).
    """
    if n <= 0:
        return {"available": False, "per_condition": 0, "stages": [],
                "reason": "not shown: report.samples_per_condition = 0"}
    groups = []
    for stage in SWEEP_STAGES:
        st = states.get(stage) or {}
        path = run_dir / stage / "results.jsonl"
        if st.get("status") != "done" or not path.exists():
            groups.append({"stage": stage, "available": False,
                           "reason": not_run(states, stage) or f"not run: {stage}/results.jsonl "
                                                                "missing"})
            continue
        rows = [r for r in read_jsonl(path)
                if isinstance(r, dict) and r.get("condition") is not None
                and r.get("prompt_id") is not None]
        by_cond: OrderedDict[str, list[dict]] = OrderedDict()
        for r in rows:
            by_cond.setdefault(str(r["condition"]), []).append(r)
        ref = by_cond.get("baseline") or (next(iter(by_cond.values())) if by_cond else [])
        picked = _pick_prompts(ref, n)
        conditions, aliased = [], []
        for cid, crow in by_cond.items():
            if cid != "baseline" and all(r.get("generated_as") == "baseline" for r in crow):
                aliased.append(cid)  # alpha = 0: the baseline's generations
                continue
            by_pid = {r["prompt_id"]: r for r in crow}
            samples = []
            for pid in picked:
                r = by_pid.get(pid)
                if r is None:
                    continue
                refused = r.get("refused")
                verdict = ("parse error" if r.get("parse_error") or refused is None
                           else "refused" if refused else "complied")
                samples.append({"prompt_id": pid, "prompt": r.get("prompt", ""),
                                "response": r.get("response", ""), "verdict": verdict,
                                "judge": r.get("judge"), "group": r.get("group"),
                                "label": r.get("label"), "split": r.get("split")})
            refused_n = sum(1 for r in crow if r.get("refused"))
            conditions.append({"id": cid, "n_rows": len(crow), "n_refused": refused_n,
                               "samples": samples})
        groups.append({"stage": stage, "available": True, "conditions": conditions,
                       "aliased": aliased, "source": f"{stage}/results.jsonl",
                       "empty_reason": None if conditions else
                       f"{stage}/results.jsonl holds no judged responses"})
    return {"available": any(g["available"] for g in groups), "per_condition": n,
            "stages": groups}
