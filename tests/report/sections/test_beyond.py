"""The "Beyond the paper" section: findings of every beyond stage in pipeline order; a stage
that did not run is "not run", never an error."""

from __future__ import annotations

from refusal_atlas.beyond import Finding, write_findings
from refusal_atlas.report import build_report, render_html, render_markdown
from refusal_atlas.report.sections.beyond import BEYOND_STAGES, beyond_section


def _states(done=(), missing=()):
    out = {}
    for name in BEYOND_STAGES:
        if name in done:
            out[name] = {"status": "done", "reason": None}
        elif name in missing:
            out[name] = {"status": "missing", "reason": "the stage has not run"}
    return out


def test_findings_in_stage_order_and_not_run_stages(tmp_path):
    write_findings(tmp_path / "subspace", [Finding(
        "subspace", "Is refusal one direction?", measured="RR 0.5 -> 0.1 <b>", criterion="k",
        verdict="k = 2", supported=True, subject="all splits")])
    write_findings(tmp_path / "cosmic", [Finding(
        "cosmic", "Same layer?", measured="layer 3 vs 4", criterion="±1", verdict="agree",
        supported=True), Finding("cosmic", "Q2", "m2", "c2", "disagree", False)])
    # layer_robustness done but without findings.json: not run, with the file named
    states = _states(done=("subspace", "cosmic", "layer_robustness"), missing=("tail_latents",))
    sec = beyond_section(tmp_path, states)
    assert sec["available"]
    assert [s["stage"] for s in sec["stages"]] == list(BEYOND_STAGES)
    by = {s["stage"]: s for s in sec["stages"]}
    assert by["subspace"]["available"] and by["subspace"]["findings"][0]["verdict"] == "k = 2"
    assert [f["verdict"] for f in by["cosmic"]["findings"]] == ["agree", "disagree"]
    assert by["style_vs_rate"]["reason"].startswith("not run")      # unknown stage
    assert by["tail_latents"]["reason"].startswith("not run: tail_latents")
    assert "layer_robustness/findings.json missing" in by["layer_robustness"]["reason"]


def test_rendered_in_html_and_markdown(tmp_path):
    write_findings(tmp_path / "subspace", [Finding(
        "subspace", "Is refusal one direction?", measured="RR <b>0.5</b>", criterion="half RR",
        verdict="k = 2", supported=True, subject="all splits")])
    data = build_report(tmp_path, _states(done=("subspace",)))
    assert data["problems"] == []
    page, md = render_html(data, strict=True), render_markdown(data)
    assert 'id="beyond"' in page and "Beyond the paper" in page
    assert "RR &lt;b&gt;0.5&lt;/b&gt;" in page            # escaped
    assert "## Beyond the paper" in md and "verdict: **k = 2**" in md
    assert "criterion: half RR" in md
    assert "not run" in md                               # the stages that did not run


def test_no_beyond_stage_run(tmp_path):
    data = build_report(tmp_path, {})
    assert not data["beyond"]["available"]
    page, md = render_html(data, strict=True), render_markdown(data)
    assert "--preset beyond" in md and "--preset beyond" in page
