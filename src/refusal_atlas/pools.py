"""Training pools and the controlled test set, drawn from the base model's labels.

* Training pools follow the paper: per split the *first* ``n_hr`` HR prompts in source
  order (no shuffle) and ``n_bc`` BC prompts drawn once per benign pool with a seed
  (123 in the paper), the pool's BC in :func:`~.labels.benign_order`; splits with fewer
  HR prompts get the first ``n_hr_found`` of that BC draw, so pools stay balanced. Lazy
  labelling labels in these same orders, so it draws the same pools.
* The controlled test set draws ``n`` prompts per label group, disjoint from every
  training pool, round-robin over splits (benign pools for BR/BC) so that each category
  is represented as evenly as the data allows.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Sequence

from .data.prompts import PromptSuite
from .errors import UserError
from .labels import GROUPS, LabelRecord, benign_order, label_counts


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
    # the pool's BC in its seeded order over the whole pool: the order lazy labelling
    # labels it in, so labelling everything or only what is needed draws the same BC
    bc_draws = {pool: [p.id for p in benign_order(prompts, pool, seed)
                       if label_of.get(p.id) == "BC"]
                for pool, prompts in suite.benign.items()}
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
    """One row per split (and benign pool): source, prompts not labelled (lazy labelling),
    HR, HC, BR, BC (of the labelled ones), training and test counts."""
    counts = label_counts(suite, records)
    test_ids = set(test_set.ids()) if test_set else set()
    rows = []
    for split, c in counts["splits"].items():
        pool = pools.splits.get(split)
        ids = {p.id for p in suite.splits[split]}
        rows.append({"name": split, "kind": "split", "benign_pool": suite.benign_for[split],
                     "source": c["pool"], "not_labelled": c["not_labelled"], "HR": c["HR"],
                     "HC": c["HC"], "BR": None, "BC": None,
                     "train_hr": len(pool.hr_ids) if pool else 0,
                     "train_bc": len(pool.bc_ids) if pool else 0,
                     "test": len(ids & test_ids)})
    for name, c in counts["benign"].items():
        ids = {p.id for p in suite.benign[name]}
        in_training = {i for p in pools.splits.values() if p.benign_pool == name for i in p.bc_ids}
        rows.append({"name": name, "kind": "benign", "benign_pool": name, "source": c["pool"],
                     "not_labelled": c["not_labelled"], "HR": None, "HC": None, "BR": c["BR"],
                     "BC": c["BC"], "train_hr": 0,
                     "train_bc": len(in_training), "test": len(ids & test_ids)})
    return rows
