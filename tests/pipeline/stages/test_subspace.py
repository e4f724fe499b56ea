"""The ``subspace`` stage on a tiny run: conditions, single-direction rows reused from the
ablation stage, rates equal to direct counts, findings written."""

import json

import pytest
from conftest import TINY_SETTINGS, one_torch_thread, write_tiny_suite

from refusal_atlas.beyond import read_findings
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import run_pipeline
from refusal_atlas.sweeps import GAP_UNCERTAINTY

BEYOND = ["beyond.enabled=true", "beyond.n_boot=100", "beyond.n_perm=100",
          "beyond.subspace.max_k=2"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _cfg(model_dir, suite, extra=()):
    return load_config(overrides={"model": {"name": str(model_dir), "dtype": "float32"},
                                  "data": {"suite": str(suite)}},
                       set_values=TINY_SETTINGS + BEYOND + list(extra))


@pytest.mark.parametrize("ablation", [True, False])
def test_subspace_stage(tiny_model_dirs, tmp_path, monkeypatch, ablation):
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_boot", 20)
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_perm", 20)
    cfg = _cfg(tiny_model_dirs["qwen2"], write_tiny_suite(tmp_path / "suite"),
               [f"steering.ablation={str(ablation).lower()}"])
    run = tmp_path / "run"
    run_pipeline(cfg, run, ["subspace"])
    out = run / "subspace"
    sub = json.loads((out / "subspace.json").read_text())
    assert sub["subspaces"] == {"subspace_k1": 1, "subspace_k2": 2, "subspace_span": 3}
    assert sub["single_from"] == ("ablation" if ablation else "subspace")
    conds = [c["id"] for c in json.loads((out / "conditions.json").read_text())["conditions"]]
    splits = sub["splits"]
    expected = ["baseline", "ablate/subspace_k1", "ablate/subspace_k2", "ablate/subspace_span"]
    assert conds == expected + ([] if ablation else [f"ablate/{s}" for s in splits])
    # rates against direct counts over the stored rows
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    if ablation:
        rows += [r for r in map(json.loads, (run / "ablation" / "results.jsonl").read_text()
                                .splitlines()) if r["condition"] != "baseline"]
    for cid in expected + [f"ablate/{s}" for s in splits]:
        harm = [r["refused"] for r in rows if r["condition"] == cid and r["harmful"]]
        got = sub["rates"][cid]["rr"]
        assert (got["k"], got["n"]) == (sum(harm), len(harm)) and got["n"] > 0
    pca = sub["pca"]
    assert pca["rank"] == 3 and abs(sum(pca["variance_explained"]) - 1) < 1e-9
    findings = read_findings(out)
    assert [f.subject for f in findings] == ["PCA", "ablation"]
    # the marker judge refuses by prompt, so no ablation can halve RR here
    assert findings[1].verdict.startswith("none") and findings[1].supported is False
