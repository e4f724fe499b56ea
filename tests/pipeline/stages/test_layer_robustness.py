"""The ``layer_robustness`` stage on a tiny run: the window's layers, the chosen layer's
directions equal the directions stage's, findings written."""

import json

from conftest import TINY_SETTINGS, write_tiny_suite

from refusal_atlas.beyond import read_findings
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import run_pipeline


def test_layer_robustness_stage(tiny_model_dirs, tmp_path):
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(write_tiny_suite(tmp_path / "suite"))}},
                      set_values=TINY_SETTINGS + ["beyond.enabled=true", "beyond.n_perm=100",
                                                  "beyond.layer_robustness.window=2",
                                                  "beyond.layer_robustness.robust_within=1"])
    run = tmp_path / "run"
    run_pipeline(cfg, run, ["layer_robustness"])
    out = json.loads((run / "layer_robustness" / "layer_robustness.json").read_text())
    chosen = json.loads((run / "layer_scan" / "layer.json").read_text())["layer"]
    assert out["chosen_layer"] == chosen
    n_layers = json.loads((tiny_model_dirs["qwen2"] / "config.json").read_text())[
        "num_hidden_layers"]
    assert out["layers"] == [x for x in range(chosen - 2, chosen + 3) if 0 <= x <= n_layers]
    assert out["max_abs_diff_vs_directions_stage"] < 1e-5
    geo = json.loads((run / "geometry" / "geometry.json").read_text())
    assert out["k"] == geo["clustering"]["best_k"]
    row = next(r for r in out["rows"] if r["layer"] == chosen)
    assert row["r"] == 1.0 and (out["k"] is None or row["ari"] == 1.0)
    # the chosen layer's matrix is the geometry stage's
    assert max(abs(a - b) for ra, rb in zip(row["cosine"], geo["cosine"])
               for a, b in zip(ra, rb)) < 1e-5
    (f,) = read_findings(run / "layer_robustness")
    assert f.experiment == "layer_robustness" and f.subject == f"L{chosen} ± 1"
    assert f.verdict in ("robust",) or f.verdict.startswith(("not robust", "not decidable"))
