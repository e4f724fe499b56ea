"""The tail_latents stage on a tiny run: tail steering and tail removal through the sweep."""

import json

from conftest import TINY_SETTINGS, one_torch_thread, write_tiny_suite

from refusal_atlas.beyond.findings import read_findings
from refusal_atlas.config import load_config
from refusal_atlas.pipeline import run_pipeline
from refusal_atlas.pipeline.inputs import run_analysis

SAE_SETTINGS = [
    "sae.train.steps=20", "sae.train.batch_size=64", "sae.train.expansion=2", "sae.train.k=4",
    "sae.train.max_tokens=1500", "sae.analysis.top_k=[2,4]", "sae.corpus.oversample=2",
    "beyond.enabled=true", "beyond.n_boot=100", "beyond.n_perm=100",
    "beyond.tail_latents.alphas=[0,2]",
]


def test_tail_latents_stage(tiny_model_dirs, tmp_path):
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(write_tiny_suite(tmp_path / "suite"))}},
                      set_values=TINY_SETTINGS + SAE_SETTINGS)
    run_dir = tmp_path / "run"
    with one_torch_thread():
        run_pipeline(cfg, run_dir, ["tail_latents"])
    out = run_dir / "tail_latents"
    result = json.loads((out / "tail_latents.json").read_text())
    analysis = run_analysis(run_dir)
    splits = [s for s in analysis.splits if analysis.tail_latents(s)]
    assert splits and result["tails"] == {s: analysis.tail_latents(s) for s in splits}
    expected = {"baseline", *(f"edit/sae_notail:{s}" for s in splits),
                *(f"vector/sae_tail:{s}/a={a}" for s in splits for a in (0, 2))}
    if analysis.core_latents():
        expected |= {"vector/sae_core/a=0", "vector/sae_core/a=2"}
    assert set(result["conditions"]) == expected
    metrics = json.loads((out / "metrics.json").read_text())["conditions"]
    for cid, row in result["conditions"].items():
        assert row["rr"]["k"] == metrics[cid]["refused_harmful"]
        assert row["orr"]["n"] == metrics[cid]["parsed_benign"]
    findings = read_findings(out)
    assert [f.subject for f in findings] == [
        *(f"{s} ({t})" for s in splits for t in ("tail steering", "tail removed")), "summary"]
    assert all(f.supported is None for f in findings[:-1])  # 2 prompts per group: too few
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    edits = [r for r in rows if r["kind"] == "edit"]
    assert edits and all(r["generated_as"] == r["condition"] for r in edits)
