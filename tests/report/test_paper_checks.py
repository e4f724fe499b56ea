"""The paper's three findings: statuses computed from the numbers, on the tiny run and on
synthetic sections."""

from __future__ import annotations

from refusal_atlas.report.paper_checks import (
    COCONOT_NON_SAFETY,
    finding_geometry,
    finding_one_knob,
    finding_sae,
)

from .conftest import has_sae_stages


def test_findings_come_from_the_numbers(data):
    by_id = {f["id"]: f for f in data["findings"]}
    assert list(by_id) == ["geometry", "one_knob", "sae"]
    for f in data["findings"]:
        assert f["status"] in ("agrees with the paper", "partly agrees with the paper",
                               "does not agree with the paper", "inconclusive",
                               "not measured in this run")
        for c in f["checks"]:
            assert c["source"] and c["criterion"] and c["measured"]
    # the marker judge ignores the steering, so RR never moves: the trade-off was not probed
    assert by_id["one_knob"]["status"] == "inconclusive"
    assert any("barely probed" in t for t in by_id["one_knob"]["text"])
    # three splits and no CoCoNot: the paper's two-cluster test is said to be not applicable
    assert any("CoCoNot" in t and "not checked" in t for t in by_id["geometry"]["text"])
    if not has_sae_stages():
        assert by_id["sae"]["status"] == "not measured in this run"


def _geo(names, k2, sil2, best_k, distinct=(10, 10)):
    clusters = [[n for n, c in zip(names, k2) if c == i] for i in range(max(k2) + 1)]
    return {"available": True, "names": names, "primary_linkage": "average", "ks": [2, 3],
            "best_k": best_k, "clusters_by_k": {"2": clusters},
            "silhouette": [{"k": 2, "average": sil2}, {"k": 3, "average": 0.1}],
            "summary": {"min_offdiag_cosine": -0.05, "max_offdiag_cosine": 0.9,
                        "min_pair": names[:2], "max_pair": names[1:3], "best_silhouette": sil2},
            "bootstrap": {"distinct_pairs": {"n_pairs": distinct[1], "n_distinct": distinct[0]}}}


def test_geometry_finding_agrees_or_not_with_the_paper():
    names = list(COCONOT_NON_SAFETY) + ["WildGuard_all", "XSTest_all", "CocoNot_Safety"]
    paper_like = finding_geometry(_geo(names, [0, 0, 0, 0, 1, 1, 1], 0.46, 2), "m")
    assert paper_like["status"] == "agrees with the paper"
    other = finding_geometry(_geo(names, [0, 1, 0, 1, 0, 1, 1], 0.05, 3, (1, 10)), "m")
    assert other["status"] == "does not agree with the paper"
    mixed = finding_geometry(_geo(names, [0, 0, 0, 0, 1, 1, 1], 0.2, 2), "m")
    assert mixed["status"] == "partly agrees with the paper"
    assert finding_geometry({"available": False, "reason": "not run: x"}, "m")["status"] == \
        "not measured in this run"


def _steer(spans, p_value, gap=0.05):
    rows = [{"label": f"d{i}", "cells": {"0": {"rr": 0.5, "orr": 0.5},
                                         "10": {"rr": 0.5 + s, "orr": 0.6}},
             "top_alpha": 10.0, "top_rr": 0.5 + s, "top_orr": 0.6, "zero_rr": 0.5,
             "zero_orr": 0.5, "rr_span": s} for i, s in enumerate(spans)]
    return {"available": True, "judge": "j", "baseline": {"rr": 0.5, "orr": 0.5},
            "table": {"alpha_keys": ["0", "10"], "rows": rows},
            "gap": {"value": gap, "pair": ["d0", "d1"], "at_rr": 0.7, "n_pairs": 1,
                    "mean_over_pairs": gap, "ci95": [0.0, 0.2], "p_value": p_value,
                    "null_mean": 0.04, "null_95": 0.1}}


def test_one_knob_finding_follows_the_permutation_test():
    assert finding_one_knob(_steer([0.4, 0.3], 0.6))["status"] == "agrees with the paper"
    assert finding_one_knob(_steer([0.4, 0.3], 0.01, 0.4))["status"] == \
        "does not agree with the paper"
    assert finding_one_knob(_steer([0.0, 0.02], 0.6))["status"] == "inconclusive"
    text = " ".join(finding_one_knob(_steer([0.4, 0.3], 0.01, 0.4))["text"])
    assert "0.400" in text and "p = 0.010" in text and "0.000–0.200" in text


def test_sae_finding_from_core_and_tail_sizes():
    base = {"available": True, "core_k": 50, "core_min_splits": 6, "splits": ["a"] * 11,
            "distinct": 300, "shared_size": 20, "steering": {"available": False, "reason": "x"}}
    assert finding_sae({**base, "core_size": 5, "tail_size": 200}, {})["status"] == \
        "agrees with the paper"
    assert finding_sae({**base, "core_size": 0, "tail_size": 3}, {})["status"] == \
        "partly agrees with the paper"
    assert finding_sae({**base, "core_size": 0, "tail_size": 0}, {})["status"] == \
        "does not agree with the paper"


def test_what_cannot_be_measured_is_said_so_with_the_reason():
    # two directions: one pair, no clustering
    names = ["A", "B"]
    two = {"available": True, "names": names, "primary_linkage": "average", "ks": [],
           "best_k": None, "clusters_by_k": {}, "silhouette": [], "bootstrap": None,
           "clustering_reason": "clustering needs at least 3 directions; this run has 2 (A, B)",
           "summary": {"min_offdiag_cosine": 0.3, "max_offdiag_cosine": 0.3,
                       "min_pair": names, "max_pair": names, "best_silhouette": None}}
    f = finding_geometry(two, "m")
    assert f["status"] == "agrees with the paper"  # the one decided check: cosine 0.3 < 0.5
    unmeasured = [c for c in f["checks"] if c["measured"] == "not measured in this run"]
    assert len(unmeasured) == 3 and all(c["agrees"] is None for c in unmeasured)
    assert all("needs at least 3 directions" in c["criterion"] for c in unmeasured)
    assert "the 2 directions (A and B) have cosine 0.30" in f["text"][0]
    # one direction curve: no trade-off gap, whatever RR did
    one = _steer([0.4], None, None)
    one["gap_reason"] = "a trade-off gap needs at least 2 directions; this run has 1 (d0)"
    knob = finding_one_knob(one)
    assert knob["status"] == "not measured in this run"
    assert f"No trade-off gap: {one['gap_reason']}." in knob["text"]
    # no rows at all
    empty = {**_steer([], None, None), "gap_reason": "no dose-response rows to compare"}
    assert finding_one_knob(empty)["status"] == "not measured in this run"
    # one split: no shared core
    sae = {"available": True, "core_k": 4, "core_min_splits": 1, "splits": ["a"],
           "core_size": 4, "tail_size": 4, "distinct": 4, "shared_size": 0,
           "core_reason": "a core shared between splits needs at least 2 splits; this run has 1 (a)",
           "steering": {"available": False, "reason": "not run: sae_steering: x"}}
    f = finding_sae(sae, {})
    assert f["status"] == "not measured in this run"
    assert all(c["agrees"] is None for c in f["checks"]) and len(f["checks"]) == 3
