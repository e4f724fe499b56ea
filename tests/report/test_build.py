"""build_report on a complete tiny run, the report stage's outputs, and robustness to
missing, disabled and broken stages."""

from __future__ import annotations

import json
import shutil

import pytest

from refusal_atlas.pipeline import (
    STAGES,
    RunContext,
    plan,
    stage_map,
    stage_states,
    write_run_report,
)
from refusal_atlas.pipeline.stages.report import READS
from refusal_atlas.pipeline.stages.report import STAGE as REPORT_STAGE
from refusal_atlas.report import build_report, render_html, render_markdown
from refusal_atlas.report.html import collect_figures

from .conftest import has_sae_stages, renders


def test_report_stage_writes_both_files_and_is_up_to_date(full_run):
    cfg, run_dir = full_run
    stage = stage_map()["report"]
    assert not stage.needs_model
    assert stage.deps == REPORT_STAGE.deps
    assert set(stage.deps) == {d for d in READS if d in stage_map()}
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert (run_dir / "report.md").read_text().startswith("# refusal-atlas")
    done = json.loads((run_dir / "report" / "_done.json").read_text())
    assert done["summary"]["html"] == "report.html" and done["summary"]["problems"] == []
    assert set(done["summary"]["findings"]) == {"geometry", "one_knob", "sae"}
    assert (run_dir / "report" / "findings.json").exists()
    statuses = {p.name: p.status for p in plan(RunContext(cfg, run_dir), ["report"])}
    assert set(statuses.values()) == {"done"}
    changed = cfg.model_copy(deep=True)
    changed.report.samples_per_condition = 1
    statuses = {p.name: p.status for p in plan(RunContext(changed, run_dir), ["report"])}
    assert [n for n, s in statuses.items() if s != "done"] == ["report"]


def test_build_report_is_json_ready_and_complete(data):
    json.dumps(data)  # JSON-ready
    assert data["problems"] == []
    s = data["summary"]
    assert s["model"].endswith("qwen2") and s["layer"] is not None and s["position"] == -2
    assert s["labels_judge"] == "marker" and s["steering_judge"] == "marker"
    assert s["n_splits"] == 3 and s["test_set"] == {"HR": 2, "HC": 2, "BR": 2, "BC": 2}
    assert {t["stage"] for t in s["timings"]} >= {"labels", "geometry", "steering", "ablation"}
    for key in ("pools", "layer_scan", "geometry", "steering", "ablation", "style", "samples"):
        assert data[key]["available"], (key, data[key].get("reason"))
    assert data["geometry"]["names"] == ["Alpha", "Beta", "Gamma"]
    assert [r["label"] for r in data["steering"]["table"]["rows"]] == ["Alpha", "Beta", "Gamma"]
    assert data["steering"]["table"]["alpha_keys"] == ["0", "2"]
    assert data["steering"]["gap"]["value"] == 0.0 and data["steering"]["gap"]["p_value"] == 1.0
    assert [r["direction"] for r in data["ablation"]["rows"]] == ["Alpha", "Beta", "Gamma"]
    if has_sae_stages():
        sae = data["sae"]
        assert sae["available"] and sae["steering"]["available"]
        assert sae["core_size"] == len(sae["core"]) and sae["tail_size"] >= 0
        assert sae["steering"]["comparison"]["gaps"]
    # samples: 3 per condition, the same prompts in every condition, alpha = 0 aliases skipped
    steer = next(g for g in data["samples"]["stages"] if g["stage"] == "steering")
    ids = [c["id"] for c in steer["conditions"]]
    assert ids[0] == "baseline" and all("a=0" not in c for c in ids)
    assert steer["aliased"] == ["steer/Alpha/a=0", "steer/Beta/a=0", "steer/Gamma/a=0"]
    picked = [[x["prompt_id"] for x in c["samples"]] for c in steer["conditions"]]
    assert all(len(p) == 3 and p == picked[0] for p in picked)
    groups = [x["group"] for x in steer["conditions"][0]["samples"]]
    assert groups == ["HR", "HC", "BR"]  # spread over the base labels
    # every figure that exists is referenced with its artifact path
    paths = {f["path"] for f in collect_figures(data)}
    assert {"geometry/cosine_heatmap.png", "geometry/mds.png", "steering/tradeoff.png",
            "steering/dose_response.png", "ablation/ablation.png",
            "layer_scan/layer_scan.png"} <= paths


def test_missing_disabled_and_broken_stages_never_crash(full_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(full_run[1], run_dir)
    for stage in ("steering", "style", "sae", "sae_analysis", "sae_steering"):
        shutil.rmtree(run_dir / stage, ignore_errors=True)
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["sae"]["enabled"] = False
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "ablation" / "metrics.json").write_text("{not json")
    (run_dir / "geometry" / "mds.png").write_bytes(b"not a png")
    d = build_report(run_dir, stage_states(run_dir, STAGES))
    assert d["steering"] == {"available": False, "reason": "not run: steering: the stage has not "
                             "run in this run folder (steering/_done.json missing)"}
    assert "disabled" in d["sae"]["reason"] and "sae.enabled = false" in d["sae"]["reason"]
    assert d["ablation"]["available"] is False and "ablation/metrics.json" in d["ablation"]["reason"]
    assert d["style"]["reason"].startswith("not run: style")
    by_id = {f["id"]: f for f in d["findings"]}
    assert by_id["one_knob"]["status"] == "not measured in this run"
    assert by_id["sae"]["status"] == "not measured in this run"
    assert by_id["geometry"]["status"] != "not measured in this run"
    page = render_html(d)
    assert page.count("not run: ") >= 4
    assert "figure <code>geometry/mds.png</code> could not be read" in page
    md = render_markdown(d)
    assert "not run: steering" in md
    assert "samples_per_condition = 0" in render_html(build_report(
        run_dir, stage_states(run_dir, STAGES), samples_per_condition=0))
    # a run folder with nothing in it still renders
    empty = tmp_path / "empty"
    empty.mkdir()
    written = write_run_report(empty)
    html_path, md_path = written["html"], written["md"]
    assert html_path.exists() and md_path.exists()
    assert all(f["status"] == "not measured in this run"
               for f in build_report(empty, stage_states(empty, STAGES))["findings"])


# --------------------------------------------------------------- 1, 2 and many directions

def test_many_directions_render_with_every_key_present(data):
    page, md = renders(data)
    assert data["geometry"]["n_pairs"] == 3 and data["geometry"]["clustering_reason"] is None
    assert "One pair" not in md and "not measured in this run: clustering" not in page


def test_two_directions_no_clustering_one_pair(two_run):
    """Issue 10: a run with exactly two directions crashed the report stage with
    ``UndefinedError: 'dict object' has no attribute 'best_silhouette'``."""
    _, run_dir, errors = two_run
    assert errors == []  # the pipeline's own report stage finished
    assert (run_dir / "report.html").exists() and (run_dir / "report" / "_done.json").exists()
    d = build_report(run_dir, stage_states(run_dir, STAGES))
    page, md = renders(d)
    g = d["geometry"]
    assert g["available"] and g["names"] == ["Alpha", "Beta"] and g["n_pairs"] == 1
    assert g["best_k"] is None and g["silhouette"] == [] and g["summary"]["best_silhouette"] is None
    assert g["clustering_reason"] == ("clustering needs at least 3 directions; this run has "
                                      "2 (Alpha, Beta)")
    assert "needs at least 3 directions" in g["bootstrap"]["k2_reason"]
    assert "one pair: cosine" in page
    assert "not measured in this run: clustering needs at least 3 directions" in page
    assert "One pair (Alpha vs Beta)" in md and "clustering not measured in this run" in md
    geo = {c["label"]: c for c in _finding(d, "geometry")["checks"]}
    for label in ("silhouette at k = 2", "number of clusters with the best silhouette"):
        assert geo[label]["measured"] == "not measured in this run"
        assert "needs at least 3 directions" in geo[label]["criterion"]
    assert geo["directions differ beyond resampling noise"]["agrees"] is not None
    assert d["steering"]["gap"]["n_pairs"] == 1 and d["steering"]["gap_reason"] is None


def test_one_direction_says_what_cannot_be_measured(one_run):
    """One direction: no pair, so no geometry and no trade-off gap; the rest is reported."""
    _, run_dir, _ = one_run
    d = build_report(run_dir, stage_states(run_dir, STAGES))
    page, md = renders(d)
    why = "geometry needs at least 2 directions; this run has 1 (Alpha)"
    assert d["geometry"]["reason"] == f"not run: {why}"
    assert [r["split"] for r in d["geometry"]["directions"]] == ["Alpha"]  # still listed
    assert d["steering"]["available"] and d["steering"]["n_directions"] == 1
    gap_why = "a trade-off gap needs at least 2 directions; this run has 1 (Alpha)"
    assert d["steering"]["gap_reason"] == gap_why
    assert why in page and why in md and f"No trade-off gap: {gap_why}" in page
    assert f"No trade-off gap: {gap_why}" in md
    for fid in ("geometry", "one_knob") + (("sae",) if has_sae_stages() else ()):
        assert _finding(d, fid)["status"] == "not measured in this run", fid
    assert any(gap_why in c["criterion"] for c in _finding(d, "one_knob")["checks"])
    if has_sae_stages():
        assert "needs at least 2 splits" in d["sae"]["core_reason"]
    written = write_run_report(run_dir)
    assert written["html"].exists() and written["md"].exists()


# ------------------------------------------------------- each stage missing / incomplete / off

# the sections that say "not run: <stage>" when that stage is not done
_SHOWN_IN = {"labels": ["pools"], "pools": ["pools"], "test_set": ["pools"],
             "layer_scan": ["layer_scan"], "geometry": ["geometry"], "steering": ["steering"],
             "ablation": ["ablation"], "sae": ["sae"], "sae_analysis": ["sae"], "style": ["style"]}


@pytest.mark.parametrize("status", ["missing", "incomplete", "disabled"])
@pytest.mark.parametrize("stage", [s.name for s in STAGES if s.name != "report"])
def test_each_stage_not_done_is_said_not_run(full_run, stage, status):
    states = stage_states(full_run[1], STAGES)
    states[stage] = {**states[stage], "status": status, "seconds": None, "summary": None,
                     "reason": f"test: {status}"}
    d = build_report(full_run[1], states)
    page, md = renders(d)
    for key in _SHOWN_IN.get(stage, []):
        assert d[key]["available"] is False and d[key]["reason"].startswith(f"not run: {stage}")
        assert d[key]["reason"] in page
    if stage == "sae_steering":
        assert d["sae"]["steering"]["reason"].startswith("not run: sae_steering")
    statuses = {f["id"]: f["status"] for f in d["findings"]}
    if stage == "geometry":
        assert statuses["geometry"] == "not measured in this run"
    if stage == "steering":
        assert statuses["one_knob"] == "not measured in this run"
        assert "not run: steering" in md


def test_a_section_that_crashes_is_a_problem_not_a_broken_page(full_run, monkeypatch):
    """The last resort (``_guard``): a section builder that raises becomes one problem line."""
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    for name in ("summary_section", "geometry_section", "steering_section"):
        monkeypatch.setattr(f"refusal_atlas.report.build.{name}", boom)
    d = build_report(full_run[1], stage_states(full_run[1], STAGES))
    assert len(d["problems"]) == 3 and all("RuntimeError: boom" in p for p in d["problems"])
    page = render_html(d, strict=True)
    md = render_markdown(d)
    assert "could not read its artifacts" in page and "could not read its artifacts" in md


def _finding(d, fid):
    return next(f for f in d["findings"] if f["id"] == fid)
