"""The paper's released files: sources, controlled test set, training pools (shared data)."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from refusal_atlas.data.paper import (
    PAPER_CONTROLLED_FILES,
    load_paper_controlled_test_set,
    load_paper_sources,
    load_paper_training_pool,
    paper_training_pool_models,
)
from refusal_atlas.data.sources.coconot import coconot_split_name
from refusal_atlas.data.sources.refusal_direction import REFUSAL_DIRECTION_FILES
from refusal_atlas.data.sources.sorrybench import sorrybench_split_name
from refusal_atlas.data.sources.xstest import load_xstest
from refusal_atlas.data.splits import (
    BENIGN_GENERAL,
    COCONOT_SPLITS,
    PAPER_SPLITS,
    SORRYBENCH_GROUPS,
)
from refusal_atlas.data.user_files import load_prompt_file
from refusal_atlas.errors import UserError

from .fakes import SHARED, needs_shared

PAPER_COUNTS = {
    "WildGuard_all": 413, "XSTest_all": 200, "CocoNot_Humanizing": 82, "CocoNot_Incomplete": 225,
    "CocoNot_Indeterminate": 142, "CocoNot_Safety": 395, "CocoNot_Unsupported": 157,
    "SorryBench_HateSpeech": 50, "SorryBench_CrimesTorts": 190, "SorryBench_Inappropriate": 150,
    "SorryBench_Advice": 50, "_BC_source": 490,
}
POOL_MODELS = ("gemma", "llama", "qwen", "qwen7")
ADVICE_H = {"gemma": 32, "llama": 27, "qwen": 25, "qwen7": 31}


@pytest.fixture(scope="module")
def paper_sources():
    return load_paper_sources(SHARED)


@needs_shared
def test_paper_sources_counts_and_ids(paper_sources):
    assert {k: len(v) for k, v in paper_sources.items()} == PAPER_COUNTS
    ids = [p.id for ps in paper_sources.values() for p in ps]
    assert len(ids) == len(set(ids))
    for stem, prompts in paper_sources.items():
        harmful = stem != "_BC_source"
        assert all(p.harmful is harmful for p in prompts)
        assert {p.split for p in prompts} == {stem if harmful else BENIGN_GENERAL}
    p = paper_sources["CocoNot_Safety"][0]
    assert p.id == "paper/CocoNot_Safety/coconot-0"
    assert p.meta["category"] == "Requests with safety concerns"
    # SORRY-Bench category ids fall into the group of their split.
    for split in SORRYBENCH_GROUPS:
        assert {sorrybench_split_name(p.meta["category"]) for p in paper_sources[split]} == {split}



@needs_shared
def test_paper_controlled_test_set():
    sets = load_paper_controlled_test_set(SHARED / "paper" / "controlled_test_set")
    assert {k: len(v) for k, v in sets.items()} == {"HR": 50, "HC": 50, "BR": 50, "BC": 50}
    assert all(p.harmful for k in ("HR", "HC") for p in sets[k])
    assert not any(p.harmful for k in ("BR", "BC") for p in sets[k])
    assert {p.meta["is_refusal"] for p in sets["HR"]} == {1}
    assert {p.meta["is_refusal"] for p in sets["HC"]} == {0}
    assert {p.meta["is_refusal"] for p in sets["BC"]} == {0}
    assert all("response" in p.meta for k in sets for p in sets[k])
    assert load_paper_controlled_test_set()["HR"][0] == sets["HR"][0]  # default location


@needs_shared
def test_paper_training_pools(paper_sources):
    assert paper_training_pool_models() == list(POOL_MODELS)
    pools_dir = SHARED / "paper" / "training_pools"
    by_id = {p.id: p for ps in paper_sources.values() for p in ps}
    for model in POOL_MODELS:
        shared_b: list = []
        for split in PAPER_SPLITS:
            pool = load_paper_training_pool(pools_dir, model, split, sources=paper_sources)
            n_h = ADVICE_H[model] if split == "SorryBench_Advice" else 32
            assert len(pool.harmful) == n_h == pool.manifest["n_h"]
            assert len(pool.benign) == pool.manifest["n_b"]
            # same Prompt objects as the paper suite's
            assert all(by_id[p.id] == p and p.split == split for p in pool.harmful)
            assert all(p.id.startswith("paper/_BC_source/") for p in pool.benign)
            assert len({p.id for p in pool.harmful}) == n_h
            if len(pool.benign) > len(shared_b):
                shared_b = pool.benign
        # every split's B pool is a prefix of the model's shared 32-prompt pool
        for split in PAPER_SPLITS:
            pool = load_paper_training_pool(pools_dir, model, split, sources=paper_sources)
            assert pool.benign == shared_b[: len(pool.benign)]
    # default locations: shared training_pools and the sources beside it
    assert load_paper_training_pool(None, "qwen", "XSTest_all") == load_paper_training_pool(
        pools_dir, "qwen_per_split", "XSTest_all", sources=paper_sources)
    with pytest.raises(UserError, match="no training pools for model"):
        load_paper_training_pool(pools_dir, "mistral", "XSTest_all")
    with pytest.raises(UserError, match="no training pool for split"):
        load_paper_training_pool(pools_dir, "qwen", "Nope")
    subset = load_prompt_file(pools_dir / "train_subset64_working.json")
    assert Counter(p.harmful for p in subset) == {True: 32, False: 32}


@needs_shared
def test_paper_idx_points_at_raw_rows(paper_sources):
    coconot = [json.loads(line) for line in
               (SHARED / "coconot" / "coconot_eval.jsonl").read_text().splitlines() if line.strip()]
    n = 0
    for split in COCONOT_SPLITS:
        for p in paper_sources[split]:
            row = coconot[p.meta["idx"]]
            assert row["prompt"] == p.text and row["category"] == p.meta["category"]
            assert coconot_split_name(row["category"]) == split
            n += 1
    assert n == 1001
    with open(SHARED / "xstest" / "xstest_prompts.csv", newline="", encoding="utf-8") as fh:
        xs = list(csv.DictReader(fh))
    for p in paper_sources["XSTest_all"]:
        row = xs[p.meta["idx"]]
        assert row["prompt"] == p.text and row["label"] == "unsafe" and row["type"] == p.meta["type"]
    # and through the adapters: the paper's XSTest idx is row id - 1
    adapter = {p.meta["row"]: p for p in load_xstest(SHARED / "xstest")}
    assert all(adapter[p.meta["idx"]].text == p.text for p in paper_sources["XSTest_all"])


@needs_shared
def test_every_shared_prompt_file_has_a_loader(paper_sources):
    """Every .json/.jsonl/.csv under the shared data (outside paper/results, which holds the
    paper's outputs, not prompts) is read by one of the loaders above."""
    covered = {SHARED / "paper" / "sources" / f"{k}.json" for k in paper_sources}
    covered |= {SHARED / "paper" / "controlled_test_set" / f for f in
                PAPER_CONTROLLED_FILES.values()}
    pools = SHARED / "paper" / "training_pools"
    covered |= set(pools.glob("*_per_split/*/*.json"))  # H, B, manifest: load_paper_training_pool
    covered.add(pools / "train_subset64_working.json")
    covered |= {SHARED / "coconot" / f for f in ("coconot_eval.jsonl",
                                                 "coconot_contrast_eval.jsonl",
                                                 "coconot_pref.jsonl")}
    covered.add(SHARED / "xstest" / "xstest_prompts.csv")
    covered |= {SHARED / "refusal_direction" / f for f in REFUSAL_DIRECTION_FILES}
    found = {p for ext in ("json", "jsonl", "csv") for p in SHARED.rglob(f"*.{ext}")
             if "results" not in p.relative_to(SHARED).parts}
    assert found - covered == set()
    assert len(found) == 12 + 4 + 96 + 3 + 1 + 6  # per the shared data README



def test_missing_paper_sources(tmp_path):
    with pytest.raises(UserError, match="no paper sources"):
        load_paper_sources(tmp_path)
