"""The ``cosmic`` stage on a tiny run: its choice, the cosines against the run's directions
by hand, findings written."""

import json

import torch
from conftest import TINY_SETTINGS, write_tiny_suite

from refusal_atlas.artifacts import read_tensors
from refusal_atlas.beyond import read_findings
from refusal_atlas.config import load_config
from refusal_atlas.directions import load_directions
from refusal_atlas.pipeline import run_pipeline


def test_cosmic_stage(tiny_model_dirs, tmp_path):
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(write_tiny_suite(tmp_path / "suite"))}},
                      set_values=TINY_SETTINGS + ["beyond.enabled=true",
                                                  "beyond.cosmic.n_prompts=4",
                                                  "beyond.cosmic.max_layer_fraction=1.0"])
    run = tmp_path / "run"
    run_pipeline(cfg, run, ["cosmic"])
    out = json.loads((run / "cosmic" / "cosmic.json").read_text())
    n_layers = json.loads((tiny_model_dirs["qwen2"] / "config.json").read_text())[
        "num_hidden_layers"]
    assert set(out["candidate_layers"]) <= set(range(n_layers))
    assert str(out["cosmic_layer"]) in out["scores"] and len(out["eval_layers"]) == 1
    assert out["n_score_prompts"] == {"harmful": 4, "harmless": 4}
    assert out["our_layer"] == json.loads((run / "layer_scan" / "layer.json").read_text())["layer"]
    best = max((v["score"], -int(k)) for k, v in out["scores"].items()
               if int(k) in out["kept_after_kl"] or not out["kept_after_kl"])
    assert -best[1] == out["cosmic_layer"]
    mine = read_tensors(run / "cosmic" / "direction.safetensors")["direction"].double()
    ours = {n: d.vector.double() / d.vector.double().norm()
            for n, d in load_directions(run / "directions").items()}
    pooled = torch.stack(list(ours.values())).mean(0)
    assert abs(out["cosines"]["pooled"] - float(mine @ pooled / pooled.norm())) < 1e-5
    for n, u in ours.items():
        assert abs(out["cosines"][n] - float(mine @ u)) < 1e-5
    (f,) = read_findings(run / "cosmic")
    assert f.experiment == "cosmic" and f.verdict.startswith(("agree", "disagree"))
