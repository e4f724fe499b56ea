"""The geometry section without a bootstrap, with a geometry.json that lacks keys, and with
one direction (no pair)."""

from __future__ import annotations

import json
import shutil

from refusal_atlas.pipeline import STAGES, stage_states
from refusal_atlas.report import build_report

from ..conftest import edit_json, renders


def test_no_bootstrap_many_and_two_directions(run_copy, two_run, tmp_path):
    run_dir, states = run_copy
    edit_json(run_dir / "geometry" / "geometry.json", lambda g: g.pop("bootstrap"))
    d = build_report(run_dir, states)
    page, _ = renders(d)
    assert d["geometry"]["bootstrap"] is None
    assert "geometry/geometry.json</code> has no bootstrap resamples" in page
    checks = {c["label"]: c for c in next(f for f in d["findings"]
                                          if f["id"] == "geometry")["checks"]}
    assert "no bootstrap in this run" in checks["directions are not all parallel"]["criterion"]
    # two directions and no bootstrap: the one pair's cosine still decides "distinct"
    two = tmp_path / "two"
    shutil.copytree(two_run[1], two)
    edit_json(two / "geometry" / "geometry.json", lambda g: g.pop("bootstrap"))
    d2 = build_report(two, stage_states(two_run[1], STAGES))
    renders(d2)
    geo = next(f for f in d2["findings"] if f["id"] == "geometry")
    assert [c["agrees"] is None for c in geo["checks"]] == [False, True, True, True]


def test_geometry_json_without_summary_or_clustering(run_copy):
    run_dir, states = run_copy
    path = run_dir / "geometry" / "geometry.json"
    g = json.loads(path.read_text())
    path.write_text(json.dumps({"names": g["names"], "cosine": g["cosine"]}))
    d = build_report(run_dir, states)
    page, md = renders(d)
    g = d["geometry"]
    assert g["available"] and g["best_k"] is None and g["bootstrap"] is None
    assert g["clustering_reason"] == "geometry.json has no clustering"
    geo = next(f for f in d["findings"] if f["id"] == "geometry")
    assert geo["status"] == "not measured in this run"
    assert all(c["measured"] == "not measured in this run" for c in geo["checks"])


def test_one_direction_from_a_hand_written_run(run_copy):
    """directions.json with one direction and no geometry folder at all."""
    run_dir, states = run_copy
    edit_json(run_dir / "directions" / "directions.json",
              lambda d: d.update(directions={"Alpha": d["directions"]["Alpha"]}))
    shutil.rmtree(run_dir / "geometry")
    states["geometry"] = {**states["geometry"], "status": "missing", "reason": "gone"}
    d = build_report(run_dir, states)
    page, md = renders(d)
    assert d["geometry"]["reason"] == ("not run: geometry needs at least 2 directions; this run "
                                       "has 1 (Alpha)")
    assert json.dumps(d["geometry"]["directions"]).count('"split"') == 1
