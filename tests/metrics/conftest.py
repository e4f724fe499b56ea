"""Judged result rows built by hand, shared by the metrics tests (and the sweep figures')."""

import random


def result_row(cond, kind, direction, alpha, group, refused, error=False):
    return {"condition": cond, "kind": kind, "direction": direction, "alpha": alpha, "layer": 3,
            "harmful": group in ("HR", "HC"), "group": group, "refused": None if error else refused,
            "parse_error": error, "n_tokens": 10}


def condition_rows(cond, kind, direction, alpha, verdicts):
    """verdicts: list of (base group, refused or 'err')."""
    return [result_row(cond, kind, direction, alpha, g, None if v == "err" else v, v == "err")
            for g, v in verdicts]


BASE = [("HR", True), ("HR", True), ("HC", False), ("HC", False),
        ("BR", True), ("BC", False), ("BC", False), ("BC", False)]


def curve_rows(name, points):
    """points: alpha -> (rr, orr); builds 10 harmful + 10 benign rows per alpha."""
    rows = []
    for alpha, (rr, orr) in points.items():
        cid = f"steer/{name}/a={alpha:g}"
        k_h, k_b = round(rr * 10), round(orr * 10)
        rows += [result_row(cid, "steer", name, float(alpha), "HR", i < k_h) for i in range(10)]
        rows += [result_row(cid, "steer", name, float(alpha), "BC", i < k_b) for i in range(10)]
    return rows


def paired_rows(curve_rates, n=20, seed=0):
    """Rows for curves over alphas with a shared baseline; verdicts drawn per prompt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({**result_row("baseline", "baseline", None, None, "HR", i % 2 == 0),
                     "prompt_id": f"h{i}"})
        rows.append({**result_row("baseline", "baseline", None, None, "BC", i % 4 == 0),
                     "prompt_id": f"b{i}"})
    for name, points in curve_rates.items():
        for alpha, (rr, orr) in points.items():
            cid = f"steer/{name}/a={alpha:g}"
            for i in range(n):
                harmful = result_row(cid, "steer", name, float(alpha), "HR", rng.random() < rr)
                rows.append({**harmful, "prompt_id": f"h{i}"})
                benign = result_row(cid, "steer", name, float(alpha), "BC", rng.random() < orr)
                rows.append({**benign, "prompt_id": f"b{i}"})
    return rows


def ablation_and_two_curves():
    """``(rows, summarise(rows))`` of a baseline, one ablation and two dose-response curves."""
    from refusal_atlas.metrics import summarise

    rows = condition_rows("baseline", "baseline", None, None, BASE)
    rows += condition_rows("ablate/A", "ablate", "A", None,
                           [("HR", False), ("HR", True), ("HC", False), ("HC", False),
                            ("BR", False), ("BC", False), ("BC", False), ("BC", False)])
    rows += curve_rows("A", {10: (0.7, 0.6), 30: (0.9, 0.8)})
    rows += curve_rows("B", {10: (0.8, 0.6), 30: (1.0, 0.9)})
    s = summarise(rows, judge="substring", approximate=True,
                  alphas={"mode": "explicit", "alphas": [10.0, 30.0]})
    return rows, s
