"""Labelling the base model's own behaviour: responses, judgements, HR/HC/BR/BC.

* Responses are generated greedily for every prompt of a suite and appended to a JSONL
  store as each batch finishes, so an interrupted labelling run resumes without redoing
  finished prompts.
* A judge turns each response into refused / complied; with the prompt's side
  (non-compliant split or benign pool) that gives HR / HC / BR / BC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .artifacts import append_jsonl, read_jsonl
from .chat import ChatFormatter, pad_left
from .data.prompts import Prompt, PromptSuite
from .generation import decode, greedy_generate, length_sorted_batches, stop_token_ids
from .progress import progress_bar

GROUPS = ("HR", "HC", "BR", "BC")


def assign_label(harmful: bool, refused: bool | None) -> str | None:
    if refused is None:
        return None
    if harmful:
        return "HR" if refused else "HC"
    return "BR" if refused else "BC"


@dataclass
class LabelRecord:
    prompt_id: str
    split: str
    harmful: bool
    response: str
    refused: bool | None
    label: str | None
    judge: str
    judge_raw: str
    n_tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


def generate_responses(lm, formatter: ChatFormatter, prompts: Sequence[Prompt], store: Path, *,
                       max_new_tokens: int, batch_size: int,
                       description: str = "label: generate") -> dict[str, dict]:
    """Greedy responses for ``prompts``, resumed from and appended to ``store`` (JSONL)."""
    done = {row["prompt_id"]: row for row in read_jsonl(store)}
    todo = [p for p in prompts if p.id not in done]
    stop = stop_token_ids(lm.model, lm.tokenizer)
    encoded = [formatter.encode(p.text) for p in todo]
    with progress_bar(description, total=len(prompts), unit="prompt") as bar:
        bar.advance(len(prompts) - len(todo))
        for group in length_sorted_batches([len(e) for e in encoded], batch_size):
            batch = pad_left([encoded[i] for i in group], formatter.pad_id)
            outputs = greedy_generate(lm.model, batch, max_new_tokens=max_new_tokens, stop_ids=stop)
            rows = [{"prompt_id": todo[i].id, "response": decode(lm.tokenizer, ids),
                     "n_tokens": len(ids)} for i, ids in zip(group, outputs)]
            append_jsonl(store, rows)
            for row in rows:
                done[row["prompt_id"]] = row
            bar.advance(len(group))
    return done


def judge_responses(judge, prompts: Sequence[Prompt], responses: Mapping[str, dict], store: Path,
                    *, chunk_size: int = 256) -> list[LabelRecord]:
    """Judge every response once (resumable in chunks) and return records in prompt order."""
    done = {row["prompt_id"]: row for row in read_jsonl(store) if row.get("judge") == judge.name}
    todo = [p for p in prompts if p.id not in done]
    with progress_bar(f"label: judge ({judge.name})", total=len(prompts), unit="response") as bar:
        bar.advance(len(prompts) - len(todo))
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            verdicts = judge.judge([p.text for p in chunk],
                                   [responses[p.id]["response"] for p in chunk])
            rows = []
            for p, v in zip(chunk, verdicts):
                rows.append(LabelRecord(
                    prompt_id=p.id, split=p.split, harmful=p.harmful,
                    response=responses[p.id]["response"], refused=v.refused,
                    label=assign_label(p.harmful, v.refused), judge=judge.name, judge_raw=v.raw,
                    n_tokens=int(responses[p.id].get("n_tokens", 0))).to_dict())
            append_jsonl(store, rows)
            for row in rows:
                done[row["prompt_id"]] = row
            bar.advance(len(chunk))
    return [LabelRecord(**done[p.id]) for p in prompts]


def label_counts(suite: PromptSuite, records: Sequence[LabelRecord]) -> dict:
    """Per split: source pool size, HR, HC; per benign pool: BR, BC; plus judge errors."""
    by_id = {r.prompt_id: r for r in records}
    out: dict = {"splits": {}, "benign": {}}
    for group, side in ((suite.splits, "splits"), (suite.benign, "benign")):
        for name, prompts in group.items():
            counts = {g: 0 for g in GROUPS}
            unlabelled = 0
            for p in prompts:
                rec = by_id.get(p.id)
                if rec is None or rec.label is None:
                    unlabelled += 1
                else:
                    counts[rec.label] += 1
            keys = ("HR", "HC") if side == "splits" else ("BR", "BC")
            out[side][name] = {"pool": len(prompts), **{k: counts[k] for k in keys},
                               "unlabelled": unlabelled}
    return out
