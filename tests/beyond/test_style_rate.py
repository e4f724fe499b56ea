"""RR / ORR with CIs and refusal styles per condition, and the style-without-rate verdict."""

import pytest

from refusal_atlas.beyond.stats import permutation_p_rates, permutation_p_tv, total_variation
from refusal_atlas.beyond.style_rate import (
    outcomes_by_condition,
    pick_alpha,
    public_table,
    style_rate_table,
    style_without_rate,
)
from refusal_atlas.style import RuleStyleClassifier

SAFETY = "I'm sorry, but I can't help with that because it is illegal and harmful."
CAPABILITY = "As an AI, I don't have a physical body, so I can't do that."


def _rows(condition, n, refused, response, harmful=True, start=0):
    return [{"condition": condition, "prompt_id": f"p{start + i}", "harmful": harmful,
             "refused": refused(i), "parse_error": False, "response": response(i)}
            for i in range(n)]


def test_table_counts_rates_and_styles():
    rows = (_rows("baseline", 10, lambda i: i < 6, lambda i: SAFETY)
            + _rows("baseline", 4, lambda i: i == 0, lambda i: SAFETY, harmful=False, start=50)
            + _rows("x", 10, lambda i: i < 4, lambda i: CAPABILITY if i < 3 else SAFETY)
            + [{"condition": "x", "prompt_id": "bad", "harmful": True, "refused": None,
                "parse_error": True, "response": ""}])
    table = style_rate_table(rows, RuleStyleClassifier(), n_boot=200)
    b, x = table["baseline"], table["x"]
    assert (b["rr"]["k"], b["rr"]["n"], b["rr"]["rate"]) == (6, 10, 0.6)
    assert (b["orr"]["k"], b["orr"]["n"]) == (1, 4)
    assert b["rr"]["ci95"][0] <= 0.6 <= b["rr"]["ci95"][1]
    assert b["style_counts"] == {"SAFETY": 6}  # benign refusals are not in the styles
    assert x["rr"]["n"] == 10  # the parse error is left out
    assert x["style_counts"] == {"CAPABILITY": 3, "SAFETY": 1}
    assert set(x["styles"]) == {"p0", "p1", "p2", "p3"}
    assert public_table(table)["x"]["n_refusals"] == 4
    assert outcomes_by_condition(rows)["x"]["refusals"]["p0"] == CAPABILITY


def _entry(harmful, styles):
    return {"rr": {"rate": sum(harmful.values()) / len(harmful), "k": sum(harmful.values()),
                   "n": len(harmful), "ci95": [0, 1]},
            "harmful": harmful, "styles": styles}


def test_verdict_matches_direct_permutation_tests():
    n = 24
    base = _entry({f"p{i}": i < 12 for i in range(n)}, {f"p{i}": "SAFETY" for i in range(12)})
    test = _entry({f"p{i}": i < 13 for i in range(n)},
                  {f"p{i}": ("CAPABILITY" if i < 10 else "SAFETY") for i in range(13)})
    ref = _entry({f"p{i}": i < 12 for i in range(n)}, {f"p{i}": "SAFETY" for i in range(12)})
    table = {"baseline": base, "t": test, "s": ref}
    out = style_without_rate(table, "t", "s", n_perm=300, seed=1)
    d = out["details"]
    assert d["tv"] == pytest.approx(total_variation(list(test["styles"].values()),
                                                    list(ref["styles"].values())))
    assert d["p_tv"] == permutation_p_tv(list(test["styles"].values()),
                                         list(ref["styles"].values()), n_perm=300, seed=1)
    ids = sorted(base["harmful"])
    assert d["p_rr"] == permutation_p_rates([test["harmful"][i] for i in ids],
                                            [base["harmful"][i] for i in ids], paired=True,
                                            n_perm=300, seed=1)
    assert d["p_tv"] < 0.05 <= d["p_rr"]
    assert out["supported"] is True and out["verdict"] == "style without rate"

    # the rate moves too: RR 0.5 -> 1.0
    table["t"] = _entry({f"p{i}": True for i in range(n)},
                        {f"p{i}": "CAPABILITY" for i in range(n)})
    out = style_without_rate(table, "t", "s", n_perm=300)
    assert out["supported"] is False and out["verdict"] == "style and rate"
    # same styles, same rate
    table["t"] = ref
    out = style_without_rate(table, "t", "s", n_perm=300)
    assert out["supported"] is False and out["verdict"] == "neither moves"


def test_not_decidable_never_crashes():
    table = {"baseline": _entry({"p0": True}, {"p0": "SAFETY"}),
             "t": _entry({"p0": True}, {"p0": "GENERIC"}),
             "s": _entry({"p0": True}, {"p0": "SAFETY"})}
    out = style_without_rate(table, "t", "s", min_refusals=5)
    assert out["supported"] is None and out["verdict"] == "not decidable"
    assert "1 vs 1 refusals" in out["measured"]
    out = style_without_rate(table, "missing", "s")
    assert out["supported"] is None and "missing" in out["measured"]


def test_pick_alpha():
    assert pick_alpha([0.0, 3.0, 6.0], -1) == 6.0
    assert pick_alpha([0.0, 3.0, 6.0], 0) == 3.0
    assert pick_alpha([0.0, 3.0, 6.0], 9) == 6.0
