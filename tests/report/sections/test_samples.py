"""The samples and pools sections with empty tables: no judged rows, empty test-set groups,
no pools."""

from __future__ import annotations

from refusal_atlas.report import build_report

from ..conftest import edit_json, renders


def test_empty_results_and_empty_test_set(run_copy):
    run_dir, states = run_copy
    (run_dir / "steering" / "results.jsonl").write_text("")
    edit_json(run_dir / "test_set" / "test_set.json",
              lambda t: t.update(groups={g: [] for g in t["groups"]}))
    (run_dir / "test_set" / "pool_report.json").write_text("[]")
    d = build_report(run_dir, states)
    page, md = renders(d)
    steer = next(g for g in d["samples"]["stages"] if g["stage"] == "steering")
    assert steer["available"] and steer["conditions"] == []
    assert steer["empty_reason"] == "steering/results.jsonl holds no judged responses"
    assert "steering/results.jsonl holds no judged responses" in page
    assert d["summary"]["test_set"] == {"HR": 0, "HC": 0, "BR": 0, "BC": 0}
    assert d["pools"]["rows"] == [] and "no pools in <code>test_set/pool_report.json" in page


def test_test_set_without_groups(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "test_set" / "test_set.json", lambda t: t.pop("groups"))
    d = build_report(run_dir, states)
    page, _ = renders(d)
    assert d["summary"]["test_set"] == {} and d["pools"]["test_set"] == {}
    assert "Controlled test set: empty" in page
