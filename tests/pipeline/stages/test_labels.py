"""The labels stage: lazy labelling (`labels.label_all=false`) against labelling every prompt."""

import json

import pytest
from conftest import one_torch_thread

from refusal_atlas.pipeline import RunContext, plan, run_pipeline


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _ids(path):
    return [json.loads(x)["prompt_id"] for x in path.read_text().splitlines() if x.strip()]


def _json(path):
    return json.loads(path.read_text())


def _lazy(cfg):
    lazy = cfg.model_copy(deep=True)
    lazy.labels.label_all = False
    return lazy


def test_lazy_labelling_labels_less_and_draws_the_same_pools_as_label_all(tiny_config, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(tmp_path / "cache"))
    every = tiny_config.model_copy(deep=True)
    every.labels.label_all = True
    run_pipeline(every, tmp_path / "all", ["test_set"])
    run_pipeline(_lazy(tiny_config), tmp_path / "lazy", ["test_set"])
    n_all = len(_ids(tmp_path / "all/labels/responses.jsonl"))
    lazy_ids = _ids(tmp_path / "lazy/labels/responses.jsonl")
    assert n_all == 54 and len(lazy_ids) == len(set(lazy_ids)) < n_all

    pools = {k: _json(tmp_path / k / "pools/pools.json")["splits"] for k in ("all", "lazy")}
    assert list(pools["lazy"]) == list(pools["all"])
    for split in pools["all"]:
        for key in ("hr_ids", "bc_ids"):
            assert pools["lazy"][split][key] == pools["all"][split][key]
    test_set = _json(tmp_path / "lazy/test_set/test_set.json")["groups"]
    assert {g: len(ids) for g, ids in test_set.items()} == {"HR": 2, "HC": 2, "BR": 2, "BC": 2}

    counts = _json(tmp_path / "lazy/labels/counts.json")
    assert counts["label_all"] is False and counts["rounds"] >= 1
    assert counts["n_prompts"] == 54 and counts["n_labelled"] == len(lazy_ids)
    sources = [*counts["splits"].values(), *counts["benign"].values()]
    assert sum(c["not_labelled"] for c in sources) == counts["n_not_labelled"] == 54 - len(lazy_ids)
    full = _json(tmp_path / "all/labels/counts.json")
    assert full["label_all"] is True and full["n_labelled"] == 54 and full["n_not_labelled"] == 0


def test_a_larger_test_set_labels_only_the_extra_prompts(tiny_config, tmp_path, monkeypatch):
    tiny_config = _lazy(tiny_config)
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run_pipeline(tiny_config, run, ["labels"])
    before = _ids(run / "labels/responses.jsonl")
    more = tiny_config.model_copy(deep=True)
    more.pools.test_per_group = 4  # more BR and BC than the first demand labelled
    assert {p.name: p.status for p in plan(RunContext(more, run), ["labels"])} == {
        "prompts": "done", "labels": "resume"}
    run_pipeline(more, run, ["test_set"])
    after = _ids(run / "labels/responses.jsonl")
    assert after[:len(before)] == before and len(after) > len(before)  # kept, then appended
    assert len(after) == len(set(after))  # nothing generated twice
    groups = _json(run / "test_set/test_set.json")["groups"]
    assert {g: len(ids) for g, ids in groups.items()} == {"HR": 4, "HC": 4, "BR": 4, "BC": 4}


def test_only_asking_for_full_responses_changes_what_the_stores_depend_on(tiny_config):
    from refusal_atlas.pipeline.stages.labels import keeps

    cut = tiny_config.model_copy(deep=True)
    cut.labels.stop_at_verdict = True
    full = tiny_config.model_copy(deep=True)
    full.labels.stop_at_verdict = False
    # stores made before the setting existed (full responses) serve the default
    assert "full_responses" not in keeps(cut)
    assert keeps(full) == {**keeps(cut), "full_responses": True}
