"""One tiny run through every stage the report reads, shared by the report's tests."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_SETTINGS, write_tiny_suite

from refusal_atlas.config import load_config
from refusal_atlas.pipeline import STAGES, run_pipeline, stage_map, stage_states
from refusal_atlas.report import build_report, write_report
from refusal_atlas.sweeps import GAP_UNCERTAINTY

SAE_SETTINGS = [
    "sae.train.steps=20", "sae.train.batch_size=64", "sae.train.expansion=2", "sae.train.k=4",
    "sae.train.max_tokens=1500", "sae.analysis.top_k=[2,4]", "sae.steer.topk=2",
    "sae.steer.max_splits=2", "sae.steer.alphas=[0,2]", "sae.corpus.oversample=2",
    "steering.alphas=[0,2]", "report.samples_per_condition=3",
]
XSS_SCRIPT = "<script>window.__xss = 1; document.title = 'XSS'; alert(1)</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss = 2; document.title = 'XSS'\">"
PAYLOAD = f"Sure! {XSS_SCRIPT} and {XSS_IMG} & more"


def has_sae_stages() -> bool:
    return "sae_steering" in stage_map()


@pytest.fixture(scope="package")
def full_run(tiny_model_dirs, tmp_path_factory):
    """One tiny run through every stage the report reads (SAE stages when they exist), the
    report stage included; then a generation with HTML in it is injected into the steering
    results (rows of the baseline and of every alpha > 0 condition)."""
    root = tmp_path_factory.mktemp("report_run")
    suite = write_tiny_suite(root / "suite")
    settings = TINY_SETTINGS + (SAE_SETTINGS if has_sae_stages() else
                                [s for s in SAE_SETTINGS if not s.startswith("sae.")])
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(suite)}}, set_values=settings)
    run_dir = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        # few resamples: the gap's uncertainty is not what these tests check
        for key, value in {"n_boot": 30, "n_perm": 30, "seed": 0}.items():
            mp.setitem(GAP_UNCERTAINTY, key, value)
        run_pipeline(cfg, run_dir, ["report"])
    path = run_dir / "steering" / "results.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for r in rows:
        if r["condition"] == "baseline" or (r.get("alpha") or 0) > 0:
            r["response"] = PAYLOAD
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return cfg, run_dir


@pytest.fixture(scope="package")
def data(full_run):
    return build_report(full_run[1], stage_states(full_run[1], STAGES))


@pytest.fixture(scope="package")
def rendered(full_run, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    html_path, md_path = write_report(data, out)
    return html_path, md_path
