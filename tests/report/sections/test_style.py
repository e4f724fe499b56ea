"""The style section when steering made no refusal to classify."""

from __future__ import annotations

from refusal_atlas.report import build_report

from ..conftest import edit_json, renders


def test_no_steered_refusals(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "style" / "summary.json",
              lambda s: s.update(by_direction={}, n_steered_refusals=0, baseline=None))
    d = build_report(run_dir, states)
    page, md = renders(d)
    sy = d["style"]
    assert sy["available"] and sy["rows"] == [] and sy["baseline"] is None
    assert sy["empty_reason"].startswith("no steered refusals to classify")
    assert "no steered refusals to classify" in page and "no steered refusals to classify" in md
    assert "| direction | refusals | dominant | purity |" not in md
