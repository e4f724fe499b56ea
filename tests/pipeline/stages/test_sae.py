"""The SAE pipeline stages (sae, sae_analysis, sae_steering) and CLI on a tiny model:
train -> analyze -> steer, published SAEs, and fingerprints that stay as they were."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import TINY_SETTINGS

from refusal_atlas.cli import main
from refusal_atlas.config import load_config
from refusal_atlas.errors import UserError
from refusal_atlas.pipeline import RunContext, plan, run_pipeline
from refusal_atlas.pipeline.inputs import run_analysis as load_analysis
from refusal_atlas.pipeline.inputs import run_sae as load_stage_sae
from refusal_atlas.pipeline.stage import model_settings
from refusal_atlas.pipeline.stages import sae as sae_stage
from refusal_atlas.pipeline.stages import sae_analysis, sae_steering
from refusal_atlas.sae import SAE, SAEInfo, load_saelens_dir, save_saelens_dir

SAE_SETTINGS = [
    "sae.train.steps=20", "sae.train.batch_size=64", "sae.train.expansion=2", "sae.train.k=4",
    "sae.train.max_tokens=1500", "sae.analysis.top_k=[2,4]", "sae.steer.topk=2",
    "sae.steer.max_splits=2", "sae.steer.alphas=[0,2]", "sae.corpus.oversample=2",
    "steering.alphas=[0,2]", "sae.corpus.responses=true",
]


def _config(tiny_model_dirs, suite_dir, extra=()):
    return load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                            "dtype": "float32"},
                                  "data": {"suite": str(suite_dir)}},
                       set_values=TINY_SETTINGS + SAE_SETTINGS + list(extra))


@pytest.fixture(scope="module")
def sae_run(tiny_model_dirs, tmp_path_factory):
    """One tiny run through direction steering and the three SAE stages (shared by tests)."""
    from conftest import write_tiny_suite

    root = tmp_path_factory.mktemp("sae_run")
    suite = write_tiny_suite(root / "suite")
    cfg = _config(tiny_model_dirs, suite)
    run_dir = root / "run"
    run_pipeline(cfg, run_dir, ["steering", "sae_steering"])
    return cfg, run_dir, suite


def test_sae_stage_trains_and_saves_saelens(sae_run):
    cfg, run_dir, _ = sae_run
    meta = json.loads((run_dir / "sae" / "sae.json").read_text())
    layer = json.loads((run_dir / "layer_scan" / "layer.json").read_text())["layer"]
    assert meta["source"] == "train" and meta["hook_layer"] == layer
    assert meta["d_sae"] == 2 * 64 and meta["architecture"] == "topk" and meta["k"] == 4
    for key in ("train", "position_all"):
        m = meta["metrics"][key]
        assert set(m) >= {"fve", "l0", "dead_fraction"} and m["l0"] <= 4
    corpus = meta["corpus"]
    assert corpus["n_rows"] <= 1500 and corpus["rows_by_source"]["position"] > 0
    assert corpus["rows_by_source"]["response"] > 0 and corpus["shared_prefix_tokens"] > 0
    assert meta["train"]["steps"] == 20
    sae = load_saelens_dir(run_dir / "sae" / "saelens")
    assert sae.hook_layer == layer and sae.d_in == 64
    report = json.loads((run_dir / "sae" / "train_report.json").read_text())
    assert report["report"]["steps"] == 20
    assert (run_dir / "sae" / "training.png").exists()


def test_analysis_stage_artifacts(sae_run):
    _, run_dir, _ = sae_run
    result = load_analysis(run_dir)
    assert result.splits == ["Alpha", "Beta", "Gamma"] and result.ks == [2, 4]
    assert result.core_min_splits == 2 and result.core_k == 4
    # HR = every HR prompt of the split (8 in the tiny suite), BC = every BC of its pool (19)
    assert result.n_hr == {"Alpha": 8, "Beta": 8, "Gamma": 8}
    assert set(result.n_bc.values()) == {19}
    for split in result.splits:
        for row in result.top[4][split]:
            assert row["score"] == pytest.approx(row["hr_frac"] - row["bc_frac"])
            assert row["score"] > 0
    for examples in result.examples.values():
        assert len(examples) <= 5
        assert all(e["label"] in ("HR", "HC", "BR", "BC") for e in examples)
    for name in ("analysis.json", "latents.md", "firing.safetensors", "popularity.png",
                 "overlap_top2.png", "overlap_top4.png", "core_scores.png"):
        assert (run_dir / "sae_analysis" / name).exists(), name


def test_steering_stage_rows_match_direction_steering(sae_run):
    _, run_dir, _ = sae_run
    out = run_dir / "sae_steering"
    vectors = json.loads((out / "vectors.json").read_text())
    names = [v["name"] for v in vectors["vectors"]]
    assert len(vectors["splits"]) == 2
    assert all(n.startswith("sae_top2:") for n in names if n != "sae_core")
    sae_rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    dir_rows = [json.loads(x) for x in
                (run_dir / "steering" / "results.jsonl").read_text().splitlines()]
    # the same row format; the baseline is steering's, marked as reused
    assert set(sae_rows[0]) - {"reused_from"} == set(dir_rows[0])
    assert {r.get("reused_from") for r in sae_rows if r["condition"] == "baseline"} == {"steering"}
    conds = {r["condition"] for r in sae_rows}
    assert "baseline" in conds and f"vector/{names[0]}/a=2" in conds
    sae, meta = load_stage_sae(run_dir)
    assert all(r["layer"] == meta["hook_layer"] for r in sae_rows if r["kind"] == "vector")
    metrics = json.loads((out / "metrics.json").read_text())
    assert {r["label"] for r in metrics["dose_response"]} == {f"vector/{n}" for n in names}
    assert metrics["alphas"]["vector_norm"] == "raw sum of decoder rows"  # explicit alphas
    cos = json.loads((out / "cosines.json").read_text())
    assert set(cos["per_split"]) == {"Alpha", "Beta", "Gamma"}
    for v in cos["per_split"].values():
        assert -1 <= v["cosine"] <= 1
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["alphas"] == [0.0, 2.0]
    row = comparison["rows"][1]
    assert row["directions_mean"]["n"] == 3 and f"vector/{names[0]}" in row
    assert (out / "comparison.md").exists() and (out / "tradeoff_vs_directions.png").exists()
    # the vector really is the (raw) sum of the decoder rows of its latents
    from refusal_atlas.sweeps import latent_sum_vector
    v = vectors["vectors"][0]
    expect = latent_sum_vector(sae.W_dec, v["latents"], meta["hook_layer"])
    assert v["raw_norm"] == pytest.approx(expect.norm, rel=1e-5)


def test_rerun_is_done_and_settings_invalidate_the_right_stages(sae_run):
    cfg, run_dir, _ = sae_run

    def statuses(c):
        ctx = RunContext(c, run_dir)
        return {p.name: p.status for p in plan(ctx, ["sae_steering"])}

    assert set(statuses(cfg).values()) == {"done"}
    changed = cfg.model_copy(deep=True)
    changed.sae.analysis.top_k = [2, 3]
    assert [n for n, s in statuses(changed).items() if s != "done"] == ["sae_analysis",
                                                                       "sae_steering"]
    changed = cfg.model_copy(deep=True)
    changed.sae.steer.alphas = [0, 3]
    assert [n for n, s in statuses(changed).items() if s != "done"] == ["sae_steering"]
    changed = cfg.model_copy(deep=True)
    changed.sae.train.steps = 21
    assert [n for n, s in statuses(changed).items() if s != "done"] == [
        "sae", "sae_analysis", "sae_steering"]


def _tiny_published_sae(folder, *, d_in=64, hook_layer=1, d_sae=32):
    g = torch.Generator().manual_seed(0)
    info = SAEInfo(d_in=d_in, d_sae=d_sae, architecture="jumprelu", hook_layer=hook_layer,
                   hook_name=f"blocks.{hook_layer}.hook_resid_pre", model_name="tiny")
    w = torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5
    tensors = {"W_enc": w, "b_enc": torch.zeros(d_sae), "W_dec": w.T.clone(),
               "b_dec": torch.zeros(d_in), "threshold": torch.full((d_sae,), 0.01)}
    sae = SAE.from_tensors(info, tensors)
    return save_saelens_dir(sae, folder)


def _copy_run(run_dir, dest, drop=()):
    shutil.copytree(run_dir, dest)
    for stage in drop:
        shutil.rmtree(dest / stage, ignore_errors=True)
    return dest


def test_published_sae_source_uses_its_own_layer(sae_run, tiny_model_dirs, tmp_path):
    _, shared_run, suite = sae_run
    run_dir = _copy_run(shared_run, tmp_path / "run")  # upstream stages are done there
    folder = _tiny_published_sae(tmp_path / "published", hook_layer=1)
    cfg = _config(tiny_model_dirs, suite, [f"sae.source={folder}", "sae.analysis.top_k=[3]"])
    ctx = RunContext(cfg, run_dir)
    assert [p.name for p in plan(ctx, ["sae_analysis"]) if p.status != "done"] == [
        "sae", "sae_analysis"]
    run_pipeline(cfg, run_dir, ["sae_analysis"])
    meta = json.loads((run_dir / "sae" / "sae.json").read_text())
    assert meta["source"] == "published" and meta["hook_layer"] == 1
    assert "position_all" in meta["metrics"]
    assert not (run_dir / "sae" / "saelens").exists()  # a published SAE is not copied
    result = load_analysis(run_dir)
    assert result.params["layer"] == 1 and result.sae["hook_layer"] == 1

    # sae.layer must agree with the SAE's own hook layer
    bad = _config(tiny_model_dirs, suite, [f"sae.source={folder}", "sae.layer=2"])
    with pytest.raises(UserError, match="reads resid_pre of layer 1, but you asked for layer 2"):
        run_pipeline(bad, run_dir, ["sae"])
    # and its width must be the model's
    wide = _tiny_published_sae(tmp_path / "wide", d_in=32)
    bad = _config(tiny_model_dirs, suite, [f"sae.source={wide}"])
    with pytest.raises(UserError, match="d_model=64"):
        run_pipeline(bad, run_dir, ["sae"])


def test_cli_commands(sae_run, tmp_path, capsys):
    _, shared_run, _ = sae_run
    # a run folder with directions (and its config.json) but no SAE stages yet
    out = _copy_run(shared_run, tmp_path / "run", drop=("sae", "sae_analysis", "sae_steering",
                                                        "steering"))
    base = ["--out", str(out)]
    done = json.loads((out / "labels" / "_done.json").read_text())["completion_id"]
    # the sae commands start from the run folder's config.json: upstream stages stay done
    code = main(["sae", "train", *base, "--steps", "15", "--expansion", "2", "--k", "3"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "FVE" in text.out + text.err
    meta = json.loads((out / "sae" / "sae.json").read_text())
    assert meta["train"]["steps"] == 15 and meta["k"] == 3

    code = main(["sae", "analyze", *base, "--top-k", "2,3", "--core-min-splits", "2"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "shared core" in text.out + text.err
    assert load_analysis(out).ks == [2, 3]

    code = main(["sae", "steer", *base, "--alphas", "0,1", "--sets", "core,split_topk,user",
                 "--latents", "0,1", "--splits", "Beta", "--max-new-tokens", "3"])
    text = capsys.readouterr()
    assert code == 0, text.err
    vectors = json.loads((out / "sae_steering" / "vectors.json").read_text())
    names = {v["name"] for v in vectors["vectors"]}
    assert "sae_user" in names and "sae_top2:Beta" in names
    assert "no finished direction steering" in text.out + text.err
    assert json.loads((out / "labels" / "_done.json").read_text())["completion_id"] == done

    code = main(["sae", "steer", *base, "--sets", "nope"])
    text = capsys.readouterr()
    assert code == 2 and "unknown sae.steer.sets" in text.out + text.err
    code = main(["sae", "analyze", *base, "--top-k", "x"])
    text = capsys.readouterr()
    assert code == 2 and "--top-k" in text.out + text.err
    code = main(["sae", "train", *base, "--dry-run", "--steps", "16"])
    text = capsys.readouterr()
    assert code == 0 and "sae" in text.out + text.err


# ---------------------------------------------------------------- fingerprints stay as they were
# The settings of the three SAE stages under the demo preset, as the flat sae section gave
# them: run folders made then must stay done.
DEMO_SAE_SETTINGS = {
    "position": -2, "layer": None, "source": "train", "architecture": "topk", "expansion": 4,
    "k": 32, "train_steps": 1200, "train_batch_size": 1024, "train_max_tokens": 200000,
    "seed": 0, "corpus_files": [], "corpus_oversample": 8, "corpus_holdout": 0.1,
    "corpus_responses": False,
}
DEMO_ANALYSIS_SETTINGS = {"position": -2, "top_k": [10, 50], "core_min_splits": None,
                          "core_k": None, "examples_k": 10, "examples_n": 5}
DEMO_STEERING_SETTINGS = {
    "steer_alphas": "auto", "steer_auto_alphas": [0.0, 0.5, 1.0, 2.0], "steer_normalize": None,
    "steer_sets": ["core", "split_topk"], "steer_topk": 10, "steer_splits": None,
    "steer_max_splits": 3, "steer_latents": [], "auto_reference_gap": 1.0, "directions": None,
    "max_new_tokens": 32, "judge": "substring", "judge_options": {}, "prompts": "test_set",
}


def _json(d):
    return json.loads(json.dumps(d))


def test_settings_equal_the_flat_sections():
    cfg = load_config(preset="demo")
    sae = _json(sae_stage.settings(cfg))
    assert sae.pop("model") == _json(model_settings(cfg))
    assert sae == DEMO_SAE_SETTINGS and list(sae) == list(DEMO_SAE_SETTINGS)
    assert _json(sae_analysis.settings(cfg)) == DEMO_ANALYSIS_SETTINGS
    assert _json(sae_steering.settings(cfg)) == DEMO_STEERING_SETTINGS
    # a config.json of a run made with the flat keys gives the same settings
    flat = load_config(overrides={"sae": {"train_steps": 200, "steer_alphas": [0, 1],
                                          "top_k": [50, 10, 10]}})
    nested = load_config(overrides={"sae": {"train": {"steps": 200},
                                            "steer": {"alphas": [0, 1]},
                                            "analysis": {"top_k": [50, 10, 10]}}})
    for stage in (sae_stage, sae_analysis, sae_steering):
        assert _json(stage.settings(flat)) == _json(stage.settings(nested))
    assert _json(sae_stage.settings(flat))["train_steps"] == 200
    assert _json(sae_analysis.settings(flat))["top_k"] == [10, 50]
    assert _json(sae_steering.settings(flat))["steer_alphas"] == [0.0, 1.0]


def test_train_options_beyond_the_flat_keys_count_only_where_set():
    cfg = load_config(preset="demo")
    assert "train_options" not in sae_stage.settings(cfg)
    cfg.sae.train.lr = 1e-3
    cfg.sae.train.device = "cuda"  # the pipeline trains on the model's device anyway
    assert sae_stage.settings(cfg)["train_options"] == {"lr": 1e-3}
