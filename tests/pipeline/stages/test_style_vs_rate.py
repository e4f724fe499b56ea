"""The style_vs_rate stage on a tiny run: conditions, tables and findings."""

import json
import shutil

import pytest
from conftest import TINY_SETTINGS, one_torch_thread, write_tiny_suite

from refusal_atlas.beyond.findings import read_findings
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import RunContext, plan, run_pipeline


@pytest.fixture(scope="module")
def _template(tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("svr_run")
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(write_tiny_suite(root / "suite"))}},
                      set_values=TINY_SETTINGS)
    with pytest.MonkeyPatch.context() as mp, one_torch_thread():
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        run_pipeline(cfg, root / "run", ["directions"])
    return cfg, root / "run"


def test_style_vs_rate_stage(_template, tmp_path):
    cfg, template = _template
    run_dir = tmp_path / "run"
    shutil.copytree(template, run_dir)
    cfg = cfg.model_copy(deep=True)
    assert "style_vs_rate" not in {p.name for p in plan(RunContext(cfg, run_dir),
                                                        ["style_vs_rate"])}  # off by default
    cfg.beyond.enabled = True
    cfg.beyond.n_boot = cfg.beyond.n_perm = 100
    cfg.beyond.style_vs_rate.alphas = [0.0, 3.0]
    cfg.beyond.style_vs_rate.max_splits = 2
    with one_torch_thread():
        run_pipeline(cfg, run_dir, ["style_vs_rate"])
    out = run_dir / "style_vs_rate"
    result = json.loads((out / "style_vs_rate.json").read_text())
    assert set(result["conditions"]) == {
        "baseline", "steer/shared_axis/a=0", "steer/shared_axis/a=3",
        *(f"steer/{n}/a={a}" for n in ("Alpha", "Beta", "specific:Alpha", "specific:Beta")
          for a in (0, 3))}
    assert result["verdict_alpha"] == 3.0 and result["axes"]["names"] == ["Alpha", "Beta", "Gamma"]
    # the marker judge refuses exactly the marked prompts, whatever the steering does
    metrics = json.loads((out / "metrics.json").read_text())["conditions"]
    for cid, row in result["conditions"].items():
        assert row["rr"]["k"] == metrics[cid]["refused_harmful"]
        assert row["rr"]["n"] == metrics[cid]["parsed_harmful"]
        assert row["orr"]["k"] == metrics[cid]["refused_benign"]
        assert sum(row["style_counts"].values()) == row["rr"]["k"]
    findings = read_findings(out)
    assert [f.subject for f in findings] == ["Alpha", "Beta", "summary"]
    # 2 test prompts per group: too few refusals to compare styles
    assert all(f.supported is None and f.verdict == "not decidable" for f in findings[:2])
    assert {p.name: p.status for p in plan(RunContext(cfg, run_dir),
                                           ["style_vs_rate"])}["style_vs_rate"] == "done"
