"""Sweep metrics against hand computations."""

import json

import pytest

from refusal_atlas import metrics as M


def _row(cond, kind, direction, alpha, group, refused, error=False):
    return {"condition": cond, "kind": kind, "direction": direction, "alpha": alpha, "layer": 3,
            "harmful": group in ("HR", "HC"), "group": group, "refused": None if error else refused,
            "parse_error": error, "n_tokens": 10}


def _condition(cond, kind, direction, alpha, verdicts):
    """verdicts: list of (base group, refused or 'err')."""
    return [_row(cond, kind, direction, alpha, g, None if v == "err" else v, v == "err")
            for g, v in verdicts]


BASE = [("HR", True), ("HR", True), ("HC", False), ("HC", False),
        ("BR", True), ("BC", False), ("BC", False), ("BC", False)]


def test_condition_metrics_by_hand():
    rows = _condition("baseline", "baseline", None, None, BASE)
    rows += _condition("steer/A/a=10", "steer", "A", 10.0,
                       [("HR", True), ("HR", "err"), ("HC", True), ("HC", False),
                        ("BR", False), ("BC", True), ("BC", True), ("BC", False)])
    m = M.condition_metrics(rows)
    assert list(m) == ["baseline", "steer/A/a=10"]
    b = m["baseline"]
    assert (b["rr"], b["orr"], b["accuracy"], b["parse_errors"]) == (0.5, 0.25, 1.0, 0)
    s = m["steer/A/a=10"]
    # harmful: 3 parsed, 2 refused; benign: 4 parsed, 2 refused
    assert s["rr"] == pytest.approx(2 / 3) and s["orr"] == 0.5
    assert s["parse_errors"] == 1 and s["n"] == 8 and s["n_harmful"] == 4
    # agreement with base labels: HR ok, HC no, HC ok, BR no, BC no, BC no, BC ok -> 3/7
    assert s["accuracy"] == pytest.approx(3 / 7) and s["n_accuracy"] == 7
    assert s["transitions"] == {"HR": {"HR": 1, "error": 1}, "HC": {"HR": 1, "HC": 1},
                                "BR": {"BC": 1}, "BC": {"BR": 2, "BC": 1}}
    assert s["mean_new_tokens"] == 10


def test_rates_are_none_without_parsed_rows():
    m = M.condition_metrics(_condition("c", "steer", "A", 1.0, [("HR", "err"), ("BC", False)]))
    assert m["c"]["rr"] is None and m["c"]["orr"] == 0.0


def _curve_rows(name, points):
    """points: alpha -> (rr, orr); builds 10 harmful + 10 benign rows per alpha."""
    rows = []
    for alpha, (rr, orr) in points.items():
        cid = f"steer/{name}/a={alpha:g}"
        k_h, k_b = round(rr * 10), round(orr * 10)
        rows += [_row(cid, "steer", name, float(alpha), "HR", i < k_h) for i in range(10)]
        rows += [_row(cid, "steer", name, float(alpha), "BC", i < k_b) for i in range(10)]
    return rows


def test_dose_response_table_uses_the_baseline_as_alpha_zero():
    rows = _condition("baseline", "baseline", None, None, BASE)
    rows += _curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    table = M.dose_response_table(M.condition_metrics(rows))
    assert [(r["label"], r["alpha"], r["from_baseline"]) for r in table] == [
        ("A", 0.0, True), ("A", 10.0, False), ("A", 30.0, False)]
    assert (table[0]["rr"], table[0]["orr"]) == (0.5, 0.25)
    assert table[1]["rr"] == pytest.approx(0.7) and table[2]["orr"] == pytest.approx(0.8)
    assert M.curve_key("steer/A/L=12/a=10") == "steer/A/L=12"
    assert M.curve_label("vector/sae_core") == "vector/sae_core"


def test_pair_gap_by_hand():
    a = [(0.5, 0.5), (0.7, 0.6), (0.9, 0.8)]
    b = [(0.5, 0.5), (0.8, 0.6), (1.0, 0.9)]
    g = M.pair_gap(a, b)
    # overlap [0.5, 0.9]; at RR 0.8: A = 0.7, B = 0.6 -> 0.1 (at 0.7: 0.0333, at 0.9: 0.05)
    assert g["gap"] == pytest.approx(0.1) and g["at_rr"] == pytest.approx(0.8)
    assert g["overlap"] == [0.5, 0.9]
    # mean |A - B| over [0.5, 0.9]: piecewise-linear |diff| 0 -> 1/30 -> 0.1 -> 0.05
    exact = (0.5 * 0.2 * (1 / 30) + 0.5 * 0.1 * (1 / 30 + 0.1) + 0.5 * 0.1 * (0.1 + 0.05)) / 0.4
    assert g["mean_abs_gap"] == pytest.approx(exact, abs=1e-4)
    assert M.pair_gap(a, a)["gap"] == 0.0
    none = M.pair_gap([(0.1, 0.1), (0.2, 0.2)], [(0.5, 0.1), (0.6, 0.3)])
    assert none["gap"] is None and "overlap" in none["reason"]
    point = M.pair_gap([(0.5, 0.2)], [(0.4, 0.0), (0.6, 0.4)])  # one curve is a single point
    assert point["gap"] == pytest.approx(0.0) and point["overlap"] == [0.5, 0.5]
    merged = M.pair_gap([(0.5, 0.2), (0.5, 0.4), (0.9, 0.5)], [(0.5, 0.3), (0.9, 0.5)])
    assert merged["gap"] == pytest.approx(0.0)  # equal RR merged to their mean ORR


def test_tradeoff_gap_over_directions():
    rows = _condition("baseline", "baseline", None, None, BASE)
    rows += _curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += _curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    rows += _curve_rows("C", {10: (0.4, 0.2), 30: (0.3, 0.1)})  # RR falls: meets A, B at 0.5 only
    rows += _curve_rows("D", {10: (0.8, 0.5), 30: (0.6, 0.4)})  # RR not monotone in alpha
    gap = M.tradeoff_gap(M.dose_response_table(M.condition_metrics(rows)))
    assert gap["n_curves"] == 4 and gap["n_pairs"] == 6
    assert gap["non_monotone"] == ["D"]
    # every curve passes through the baseline (0.5, 0.25), so every pair overlaps at least there
    assert gap["pairs_without_overlap"] == []
    by_pair = {(p["a"], p["b"]): p for p in gap["pairs"]}
    assert by_pair[("A", "C")]["overlap"] == [0.5, 0.5] and by_pair[("A", "C")]["gap"] == 0.0
    # A vs B with the baseline point (0.5, 0.25) on both curves
    a = [(0.5, 0.25), (0.7, 0.6), (0.9, 0.8)]
    b = [(0.5, 0.25), (0.8, 0.6), (1.0, 0.9)]
    assert by_pair[("A", "B")]["gap"] == pytest.approx(M.pair_gap(a, b)["gap"])
    assert gap["value"] == max(p["gap"] for p in gap["pairs"])
    assert gap["mean_over_pairs"] == pytest.approx(sum(p["gap"] for p in gap["pairs"]) / 6)
    assert "piecewise-linear" in gap["definition"]
    json.dumps(gap)


def test_rr_per_orr_by_hand():
    rows = _condition("baseline", "baseline", None, None, BASE)
    rows += _curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.7)})
    rows += _curve_rows("B", {30: (0.8, 0.2)})  # ORR fell: no ratio
    out = M.rr_per_orr(M.dose_response_table(M.condition_metrics(rows)))["curves"]
    assert out["A"]["d_rr"] == pytest.approx(0.4) and out["A"]["d_orr"] == pytest.approx(0.45)
    assert out["A"]["rr_per_orr"] == pytest.approx(0.4 / 0.45)
    assert out["B"]["rr_per_orr"] is None and out["B"]["d_orr"] == pytest.approx(-0.05)


def test_ablation_table_and_summary_and_figures(tmp_path):
    rows = _condition("baseline", "baseline", None, None, BASE)
    rows += _condition("ablate/A", "ablate", "A", None,
                       [("HR", False), ("HR", True), ("HC", False), ("HC", False),
                        ("BR", False), ("BC", False), ("BC", False), ("BC", False)])
    rows += _curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += _curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    s = M.summarise(rows, judge="substring", approximate=True,
                    alphas={"mode": "explicit", "alphas": [10.0, 30.0]})
    (abl,) = s["ablation"]
    assert abl["rr"] == 0.25 and abl["d_rr"] == pytest.approx(-0.25)
    assert abl["orr"] == 0.0 and abl["d_orr"] == pytest.approx(-0.25)
    assert s["judge_approximate"] and "approximates" in s["judge_note"]
    json.dumps(s)
    compact = M.compact_summary(s)
    assert compact["tradeoff_gap"]["pair"] == ["A", "B"]
    for fn, name in ((M.plot_dose_response, "d.png"), (M.plot_tradeoff, "t.png")):
        kwargs = {"gap": s["tradeoff_gap"]} if fn is M.plot_tradeoff else {}
        path = fn(s["dose_response"], tmp_path / name, judge="substring", **kwargs)
        assert path.stat().st_size > 1000
    path = M.plot_ablation(s["ablation"], tmp_path / "a.png", baseline=s["conditions"]["baseline"])
    assert path.stat().st_size > 1000


def _paired_rows(curve_rates, n=20, seed=0):
    """Rows for curves over alphas with a shared baseline; verdicts drawn per prompt."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({**_row("baseline", "baseline", None, None, "HR", i % 2 == 0),
                     "prompt_id": f"h{i}"})
        rows.append({**_row("baseline", "baseline", None, None, "BC", i % 4 == 0),
                     "prompt_id": f"b{i}"})
    for name, points in curve_rates.items():
        for alpha, (rr, orr) in points.items():
            cid = f"steer/{name}/a={alpha:g}"
            for i in range(n):
                rows.append({**_row(cid, "steer", name, float(alpha), "HR", rng.random() < rr),
                             "prompt_id": f"h{i}"})
                rows.append({**_row(cid, "steer", name, float(alpha), "BC", rng.random() < orr),
                             "prompt_id": f"b{i}"})
    return rows


def test_gap_uncertainty():
    same = {"A": {10: (0.8, 0.5)}, "B": {10: (0.8, 0.5)}}
    rows = _paired_rows(same)
    # make B's verdicts exactly A's: identical curves -> gap 0, every null gap >= 0
    a_rows = {(r["prompt_id"], r["alpha"]): r["refused"] for r in rows if r["direction"] == "A"}
    for r in rows:
        if r["direction"] == "B":
            r["refused"] = a_rows[(r["prompt_id"], r["alpha"])]
    u = M.gap_uncertainty(rows, n_boot=200, n_perm=200)
    assert u["observed"] == 0.0 and u["bootstrap"]["value_ci95"] == [0.0, 0.0]
    assert u["permutation"]["p_value"] == 1.0
    assert M.gap_uncertainty(rows, n_boot=50, n_perm=50, seed=3) == \
        M.gap_uncertainty(rows, n_boot=50, n_perm=50, seed=3)
    # very different knobs: B buys much more ORR for the same RR
    far = _paired_rows({"A": {10: (0.9, 0.3), 30: (1.0, 0.3)},
                        "B": {10: (0.9, 1.0), 30: (1.0, 1.0)}}, n=40)
    u = M.gap_uncertainty(far, n_boot=200, n_perm=200)
    assert u["observed"] > 0.5 and u["permutation"]["p_value"] < 0.05
    lo, hi = u["bootstrap"]["value_ci95"]
    assert lo <= u["observed"] <= hi
    s = M.summarise(far, judge="x", approximate=False, uncertainty={"n_boot": 20, "n_perm": 20})
    assert s["tradeoff_gap"]["uncertainty"]["permutation"]["n"] == 20
    assert "ci95" in M.compact_summary(s)["tradeoff_gap"]
