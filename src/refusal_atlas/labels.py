"""Labelling the base model's own behaviour, training pools and the controlled test set.

* Responses are generated greedily for every prompt of a suite and appended to a JSONL
  store as each batch finishes, so an interrupted labelling run resumes without redoing
  finished prompts.
* A judge turns each response into refused / complied; with the prompt's side
  (non-compliant split or benign pool) that gives HR / HC / BR / BC.
* Training pools follow the paper: per split the *first* ``n_hr`` HR prompts in source
  order (no shuffle) and ``n_bc`` BC prompts drawn once per benign pool with a seed
  (123 in the paper); splits with fewer HR prompts get the first ``n_hr_found`` of that
  BC draw, so pools stay balanced.
* The controlled test set draws ``n`` prompts per label group, disjoint from every
  training pool, round-robin over splits (benign pools for BR/BC) so that each category
  is represented as evenly as the data allows.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .artifacts import append_jsonl, read_jsonl
from .chat import ChatFormatter, pad_left
from .errors import UserError
from .generation import decode, greedy_generate, length_sorted_batches, stop_token_ids
from .progress import progress_bar
from .prompts import Prompt, PromptSuite

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


# ---------------------------------------------------------------------------
# Pools


@dataclass
class SplitPool:
    split: str
    benign_pool: str
    hr_ids: list[str]
    bc_ids: list[str]
    available_hr: int
    available_bc: int


@dataclass
class TrainingPools:
    n_hr: int
    n_bc: int
    seed: int
    splits: dict[str, SplitPool]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingPools":
        splits = {k: SplitPool(**v) for k, v in data["splits"].items()}
        return cls(n_hr=data["n_hr"], n_bc=data["n_bc"], seed=data["seed"], splits=splits,
                   warnings=list(data.get("warnings", [])))

    def used_ids(self) -> set[str]:
        return {i for pool in self.splits.values() for i in (*pool.hr_ids, *pool.bc_ids)}


def draw_training_pools(suite: PromptSuite, records: Sequence[LabelRecord], *, n_hr: int = 32,
                        n_bc: int = 32, seed: int = 123, min_hr: int = 4) -> TrainingPools:
    by_id = {r.prompt_id: r for r in records}
    label_of = {pid: r.label for pid, r in by_id.items()}
    bc_draws: dict[str, list[str]] = {}
    for pool, prompts in suite.benign.items():
        bc = [p.id for p in prompts if label_of.get(p.id) == "BC"]
        random.Random(f"{seed}:{pool}").shuffle(bc)
        bc_draws[pool] = bc
    splits, warnings = {}, []
    for split, prompts in suite.splits.items():
        hr_all = [p.id for p in prompts if label_of.get(p.id) == "HR"]
        hr = hr_all[:n_hr]
        pool = suite.benign_for[split]
        bc = bc_draws[pool][:min(n_bc, len(hr))]
        if len(hr) < n_hr:
            warnings.append(f"{split}: only {len(hr)} HR prompts (wanted {n_hr}); using "
                            f"{len(hr)}/{len(bc)}")
        if len(bc) < min(n_bc, len(hr)):
            warnings.append(f"{split}: benign pool {pool} has only {len(bc)} BC prompts")
        if len(hr) < min_hr or len(bc) < min_hr:
            warnings.append(f"{split}: too few prompts for a direction ({len(hr)} HR, "
                            f"{len(bc)} BC; need {min_hr}); split skipped")
            continue
        splits[split] = SplitPool(split=split, benign_pool=pool, hr_ids=hr, bc_ids=bc,
                                  available_hr=len(hr_all), available_bc=len(bc_draws[pool]))
    if not splits:
        raise UserError("no split has enough HR and BC prompts for a direction; "
                        + "; ".join(warnings))
    return TrainingPools(n_hr=n_hr, n_bc=n_bc, seed=seed, splits=splits, warnings=warnings)


@dataclass
class TestSet:
    n_per_group: int
    seed: int
    groups: dict[str, list[str]]
    available: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TestSet":
        return cls(**data)

    def ids(self) -> list[str]:
        return [i for g in GROUPS for i in self.groups.get(g, [])]


def build_test_set(suite: PromptSuite, records: Sequence[LabelRecord], pools: TrainingPools, *,
                   n_per_group: int = 50, seed: int = 0,
                   splits: Sequence[str] | None = None) -> TestSet:
    """``n_per_group`` prompts per HR/HC/BR/BC group, disjoint from the training pools."""
    used = pools.used_ids()
    label_of = {r.prompt_id: r.label for r in records}
    chosen_splits = list(splits) if splits is not None else list(suite.splits)
    chosen_benign = sorted({suite.benign_for[s] for s in chosen_splits})
    groups, available, warnings = {}, {}, []
    rng = random.Random(seed)
    for group in GROUPS:
        sources = suite.splits if group in ("HR", "HC") else suite.benign
        names = chosen_splits if group in ("HR", "HC") else chosen_benign
        buckets = []
        for name in names:
            ids = [p.id for p in sources[name] if label_of.get(p.id) == group and p.id not in used]
            rng.shuffle(ids)
            buckets.append(ids)
        available[group] = sum(len(b) for b in buckets)
        groups[group] = _round_robin(buckets, n_per_group, rng)
        if len(groups[group]) < n_per_group:
            warnings.append(f"test set: only {available[group]} {group} prompts are available "
                            f"outside the training pools (wanted {n_per_group}); using "
                            f"{len(groups[group])}")
    return TestSet(n_per_group=n_per_group, seed=seed, groups=groups, available=available,
                   warnings=warnings)


def _round_robin(buckets: list[list[str]], n: int, rng: random.Random) -> list[str]:
    order = list(range(len(buckets)))
    rng.shuffle(order)
    cursors = [0] * len(buckets)
    out: list[str] = []
    while len(out) < n:
        progressed = False
        for b in order:
            if len(out) >= n:
                break
            if cursors[b] < len(buckets[b]):
                out.append(buckets[b][cursors[b]])
                cursors[b] += 1
                progressed = True
        if not progressed:
            break
    return out


def pool_report(suite: PromptSuite, records: Sequence[LabelRecord], pools: TrainingPools,
                test_set: TestSet | None = None) -> list[dict]:
    """One row per split (and benign pool): source, HR, HC, BR, BC, training and test counts."""
    counts = label_counts(suite, records)
    test_ids = set(test_set.ids()) if test_set else set()
    rows = []
    for split, c in counts["splits"].items():
        pool = pools.splits.get(split)
        ids = {p.id for p in suite.splits[split]}
        rows.append({"name": split, "kind": "split", "benign_pool": suite.benign_for[split],
                     "source": c["pool"], "HR": c["HR"], "HC": c["HC"], "BR": None, "BC": None,
                     "train_hr": len(pool.hr_ids) if pool else 0,
                     "train_bc": len(pool.bc_ids) if pool else 0,
                     "test": len(ids & test_ids)})
    for name, c in counts["benign"].items():
        ids = {p.id for p in suite.benign[name]}
        in_training = {i for p in pools.splits.values() if p.benign_pool == name for i in p.bc_ids}
        rows.append({"name": name, "kind": "benign", "benign_pool": name, "source": c["pool"],
                     "HR": None, "HC": None, "BR": c["BR"], "BC": c["BC"], "train_hr": 0,
                     "train_bc": len(in_training), "test": len(ids & test_ids)})
    return rows


# ---------------------------------------------------------------------------
# Run-folder stages


def load_label_records(labels_dir: Path) -> list[LabelRecord]:
    rows = {r["prompt_id"]: r for r in read_jsonl(Path(labels_dir) / "labels.jsonl")}
    return [LabelRecord(**r) for r in rows.values()]


def run_labels_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from .artifacts import write_json

    cfg = ctx.config.labels
    prompts = ctx.suite.all_prompts()
    responses = generate_responses(ctx.lm, ctx.formatter, prompts, out_dir / "responses.jsonl",
                                   max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    judge = ctx.judge(cfg.judge, cfg.judge_options)
    records = judge_responses(judge, prompts, responses, out_dir / "labels.jsonl")
    counts = label_counts(ctx.suite, records)
    summary = {"judge": judge.name, "approximate_judge": bool(getattr(judge, "approximate", False)),
               "max_new_tokens": cfg.max_new_tokens, "n_prompts": len(prompts),
               "judge_parse_errors": sum(1 for r in records if r.refused is None), **counts}
    write_json(out_dir / "counts.json", summary)
    return summary


def _warn(warnings: list[str]) -> None:
    from .progress import console

    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def run_pools_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from .artifacts import write_json

    cfg = ctx.config.pools
    records = load_label_records(ctx.stage_dir("labels"))
    pools = draw_training_pools(ctx.suite, records, n_hr=cfg.n_hr, n_bc=cfg.n_bc, seed=cfg.seed,
                                min_hr=cfg.min_pool)
    write_json(out_dir / "pools.json", pools.to_dict())
    _warn(pools.warnings)
    return {"splits_with_direction": list(pools.splits), "warnings": pools.warnings}


def run_test_set_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    """Its own stage: a different test set must not redo the directions."""
    from .artifacts import write_json

    cfg = ctx.config.pools
    records = load_label_records(ctx.stage_dir("labels"))
    pools = load_training_pools(ctx.stage_dir("pools"))
    test_set = build_test_set(ctx.suite, records, pools, n_per_group=cfg.test_per_group,
                              seed=cfg.test_seed, splits=list(pools.splits))
    write_json(out_dir / "test_set.json", test_set.to_dict())
    write_json(out_dir / "pool_report.json", pool_report(ctx.suite, records, pools, test_set))
    _warn(test_set.warnings)
    return {"test_set": {g: len(ids) for g, ids in test_set.groups.items()},
            "warnings": test_set.warnings}


def load_training_pools(pools_dir: Path) -> TrainingPools:
    from .artifacts import read_json

    return TrainingPools.from_dict(read_json(Path(pools_dir) / "pools.json"))


def load_test_set(test_set_dir: Path) -> TestSet:
    from .artifacts import read_json

    return TestSet.from_dict(read_json(Path(test_set_dir) / "test_set.json"))
