"""The steering and ablation sections with empty tables: no dose-response rows, no gap, no
ablation rows."""

from __future__ import annotations

from refusal_atlas.report import build_report

from ..conftest import edit_json, renders


def _empty_sweep(m):
    m.update(dose_response=[], tradeoff_gap=None, rr_per_orr={})


def test_no_dose_response_rows(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "steering" / "metrics.json", _empty_sweep)
    d = build_report(run_dir, states)
    page, md = renders(d)
    st = d["steering"]
    assert st["available"] and st["table"]["rows"] == [] and st["n_directions"] == 0
    assert st["gap_reason"] == "no dose-response rows to compare"
    assert "No dose-response rows in <code>steering/metrics.json → dose_response</code>" in page
    assert "No trade-off gap: no dose-response rows to compare" in page
    assert "_No dose-response rows in `steering/metrics.json`._" in md
    knob = next(f for f in d["findings"] if f["id"] == "one_knob")
    assert knob["status"] == "not measured in this run"


def test_two_curves_without_a_gap(run_copy):
    """Curves whose RR ranges never overlap: the gap cannot be computed and is not judged."""
    run_dir, states = run_copy
    edit_json(run_dir / "steering" / "metrics.json",
              lambda m: m.update(tradeoff_gap={"value": None, "pairs_without_overlap": [["a", "b"]]}))
    d = build_report(run_dir, states)
    page, _ = renders(d)
    assert d["steering"]["gap_reason"] == "no two curves have overlapping RR ranges"
    assert "pairs without overlapping RR ranges" not in page  # no gap block at all
    knob = next(f for f in d["findings"] if f["id"] == "one_knob")
    assert knob["status"] == "not measured in this run"
    assert "No trade-off gap: no two curves have overlapping RR ranges." in knob["text"]


def test_no_ablation_rows(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "ablation" / "metrics.json", lambda m: m.update(ablation=[]))
    d = build_report(run_dir, states)
    page, md = renders(d)
    assert d["ablation"]["available"] and d["ablation"]["rows"] == []
    assert "no ablation rows in <code>ablation/metrics.json</code>" in page
    assert "_No ablation rows in `ablation/metrics.json`._" in md
