"""The SAE section with empty tables and with too few splits for a shared core."""

from __future__ import annotations

import pytest

from refusal_atlas.report import build_report

from ..conftest import edit_json, has_sae_stages, renders

pytestmark = pytest.mark.skipif(not has_sae_stages(), reason="no SAE stages")


def _empty(a):
    a.update(core={}, tail={}, top={}, popularity={}, ks=[], summary={})


def test_empty_core_tail_and_top_k(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "sae_analysis" / "analysis.json", _empty)
    edit_json(run_dir / "sae_steering" / "metrics.json",
              lambda m: m.update(dose_response=[], tradeoff_gap=None))
    d = build_report(run_dir, states)
    page, md = renders(d)
    sae = d["sae"]
    assert sae["available"] and sae["core"] == [] and all(t["n"] == 0 for t in sae["tails"])
    assert "The core is empty" in page and "no top-K in <code>sae_analysis/analysis.json" in page
    assert "No dose-response rows in <code>sae_steering/metrics.json" in page
    assert sae["steering"]["gap_reason"] == "no dose-response rows to compare"
    f = next(f for f in d["findings"] if f["id"] == "sae")
    assert any("has no core or tail size" in c["criterion"] for c in f["checks"])
    assert f["status"] == "not measured in this run"


def test_no_splits_and_a_core_of_one_split(run_copy):
    run_dir, states = run_copy
    edit_json(run_dir / "sae_analysis" / "analysis.json", lambda a: a.update(splits=[]))
    d = build_report(run_dir, states)
    page, _ = renders(d)
    assert "no splits in <code>sae_analysis/analysis.json" in page
    assert d["sae"]["core_reason"] == ("a core shared between splits needs at least 2 splits; "
                                       "this run has none")
    edit_json(run_dir / "sae_analysis" / "analysis.json",
              lambda a: a.update(splits=["Alpha", "Beta"], core_min_splits=1))
    d = build_report(run_dir, states)
    page, md = renders(d)
    assert "every latent counts as core" in d["sae"]["core_reason"]
    assert "Shared core vs long tail not measured in this run" in page
    assert "Shared core vs long tail not measured in this run" in md
