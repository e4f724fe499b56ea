import json

import pytest

from refusal_atlas.pipeline import RunContext, plan, run_pipeline
from refusal_atlas.sweeps import batches as labels_mod  # labelling generates its batches there

TARGETS = ["test_set", "directions", "geometry"]


def _statuses(cfg, run_dir, targets=TARGETS, force=()):
    ctx = RunContext(cfg, run_dir)
    return {p.name: p.status for p in plan(ctx, targets, force)}


def test_directions_pipeline_writes_every_artifact(tiny_config, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_pipeline(tiny_config, run_dir, TARGETS)
    # the estimate comes before the first stage starts
    err = capsys.readouterr().err
    assert err.index("8 stages to run, estimated ~") < err.index("▶ prompts")
    for rel in ["config.json", "prompts/prompts.jsonl", "labels/responses.jsonl",
                "labels/labels.jsonl", "labels/counts.json", "pools/pools.json",
                "test_set/test_set.json", "test_set/pool_report.json", "layer_scan/layer_scan.json",
                "layer_scan/layer.json", "layer_scan/layer_scan.png", "activations/acts.safetensors",
                "directions/directions.safetensors", "directions/directions.json",
                "geometry/geometry.json", "geometry/cosine_heatmap.png", "geometry/mds.png"]:
        assert (run_dir / rel).exists(), rel
    counts = json.loads((run_dir / "labels/counts.json").read_text())
    # lazily labelled: a prefix of Alpha in suite order, with the pool's 4 HR + 2 for the test
    alpha = counts["splits"]["Alpha"]
    n = alpha["labelled"]
    assert alpha["HR"] == sum(i % 4 != 3 for i in range(n)) >= 6 and alpha["HC"] == n - alpha["HR"]
    assert alpha["not_labelled"] == 10 - n
    manifest = json.loads((run_dir / "directions/directions.json").read_text())
    assert manifest["splits"] == ["Alpha", "Beta", "Gamma"]
    for m in manifest["directions"].values():
        assert m["n_hr"] == 4 and m["n_bc"] == 4 and m["position"] == -2
    geometry = json.loads((run_dir / "geometry/geometry.json").read_text())
    assert len(geometry["names"]) == 3


def test_rerun_is_a_no_op_and_settings_invalidate_exactly_their_stages(tiny_config, tmp_path,
                                                                       monkeypatch):
    tiny_config = tiny_config.model_copy(deep=True)
    tiny_config.labels.label_all = False  # lazy first; labelling everything below
    run_dir = tmp_path / "run"
    run_pipeline(tiny_config, run_dir, TARGETS)
    assert set(_statuses(tiny_config, run_dir).values()) == {"done"}

    import refusal_atlas.pipeline.context as context_mod
    monkeypatch.setattr(context_mod, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    run_pipeline(tiny_config, run_dir, TARGETS)  # nothing to do: the model is never loaded

    changed = tiny_config.model_copy(deep=True)
    changed.geometry.n_resamples = 7
    statuses = _statuses(changed, run_dir)
    assert [n for n, s in statuses.items() if s != "done"] == ["geometry"]

    # Lazy labelling (the default) labels what the pools and the test set need, so their
    # sizes (n_hr, n_bc, test_per_group) and seed are labels settings too: another demand
    # may need more labels. The labels stage resumes from its stores (only missing prompts
    # are labelled), but its new completion re-runs what reads the labels (activations and
    # geometry's bootstrap read every labelled prompt); a larger test set leaves the pools
    # and the directions as they were.
    changed = tiny_config.model_copy(deep=True)
    changed.pools.n_bc = 3
    statuses = _statuses(changed, run_dir)
    assert [n for n, s in statuses.items() if s != "done"] == [
        "labels", "pools", "test_set", "layer_scan", "activations", "directions", "geometry"]

    changed = tiny_config.model_copy(deep=True)
    changed.pools.test_per_group = 3
    statuses = _statuses(changed, run_dir)
    assert statuses["labels"] == "resume"
    assert [n for n, s in statuses.items() if s != "done"] == [
        "labels", "pools", "test_set", "layer_scan", "activations", "directions", "geometry"]

    # labelling every prompt, the pools' and the test set's sizes are theirs alone: a new
    # test set does not touch the labels or the directions, other pools not the labels
    every = tiny_config.model_copy(deep=True)
    every.labels.label_all = True
    monkeypatch.undo()  # the model loads again: the rest of the prompts get labels
    run_pipeline(every, run_dir, TARGETS)
    changed = every.model_copy(deep=True)
    changed.pools.test_per_group = 3
    statuses = _statuses(changed, run_dir)
    assert [n for n, s in statuses.items() if s != "done"] == ["test_set"]
    changed = every.model_copy(deep=True)
    changed.pools.n_bc = 3
    statuses = _statuses(changed, run_dir)
    assert [n for n, s in statuses.items() if s != "done"] == [
        "pools", "test_set", "layer_scan", "activations", "directions", "geometry"]


def test_force_redoes_a_stage_and_its_dependents(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run_pipeline(tiny_config, run_dir, TARGETS)
    before = {s: json.loads((run_dir / s / "_done.json").read_text())["completion_id"]
              for s in ("labels", "pools", "directions", "geometry")}
    run_pipeline(tiny_config, run_dir, TARGETS, force=["directions"])
    after = {s: json.loads((run_dir / s / "_done.json").read_text())["completion_id"]
             for s in before}
    assert after["labels"] == before["labels"] and after["pools"] == before["pools"]
    assert after["directions"] != before["directions"]
    assert after["geometry"] != before["geometry"]


def test_interrupted_labelling_resumes_to_the_same_result(tiny_config, tmp_path, monkeypatch):
    tiny_config = tiny_config.model_copy(deep=True)
    tiny_config.executor.unit_batches = 1  # units of one batch: the run dies between units
    clean = tmp_path / "clean"
    run_pipeline(tiny_config, clean, ["labels"])

    broken = tmp_path / "broken"
    original = labels_mod.greedy_generate
    calls = {"n": 0}

    def dies_after_one_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(labels_mod, "greedy_generate", dies_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(tiny_config, broken, ["labels"])
    n_clean = len((clean / "labels/responses.jsonl").read_text().splitlines())
    partial = (broken / "labels/responses.jsonl").read_text().splitlines()
    assert 0 < len(partial) < n_clean
    assert _statuses(tiny_config, broken, ["labels"])["labels"] == "resume"

    monkeypatch.setattr(labels_mod, "greedy_generate", original)
    run_pipeline(tiny_config, broken, ["labels"])

    def rows(run):
        data = [json.loads(x) for x in (run / "labels/labels.jsonl").read_text().splitlines()]
        return sorted((r["prompt_id"], r["response"], r["label"]) for r in data)

    assert rows(broken) == rows(clean)
    responses = [json.loads(x)["prompt_id"] for x in
                 (broken / "labels/responses.jsonl").read_text().splitlines()]
    assert len(responses) == len(set(responses)) == n_clean  # nothing generated twice
