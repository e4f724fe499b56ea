"""Style vs rate: does an intervention change *how* the model refuses without changing
*how often* (issue 14, experiments 1 and 3)?

Per condition of a judged sweep: RR and ORR, each with its count and bootstrap CI over
prompts, and the style distribution of its refusals of harmful prompts (the rule-based
classifier of the ``style`` stage by default). The verdict "style without rate" compares a
test condition with two references:

* **style**: its refusals' style distribution against the style reference's (total-variation
  distance, permutation p);
* **rate**: its RR against the rate reference's (the unsteered baseline), paired by prompt
  (permutation p, prompts judged under both).

Supported when the style differs (p < :data:`P_LEVEL`) and the RR does not (p >=
:data:`P_LEVEL`); not decidable (``supported=None``) when either side has fewer than
``min_refusals`` refusals to take a style distribution of, or no shared prompts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from .findings import Finding
from .stats import bootstrap_rate, permutation_p_rates, permutation_p_tv, total_variation

P_LEVEL = 0.05
"""The significance level of every "differs" in these verdicts."""


def outcomes_by_condition(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{condition: {"harmful": {prompt_id: refused}, "benign": {...}, "refusals":
    {prompt_id: response}}}`` from judged sweep rows; parse errors are left out (as in
    :func:`~refusal_atlas.metrics.condition_metrics`), ``refusals`` are harmful-prompt ones."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        c = out.setdefault(row["condition"], {"harmful": {}, "benign": {}, "refusals": {}})
        refused = row.get("refused")
        if row.get("parse_error") or refused is None:
            continue
        side = "harmful" if row["harmful"] else "benign"
        c[side][row["prompt_id"]] = bool(refused)
        if side == "harmful" and refused:
            c["refusals"][row["prompt_id"]] = row["response"]
    return out


def style_rate_table(rows: Iterable[Mapping[str, Any]], classifier, *, n_boot: int = 1000,
                     seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per condition: RR, ORR (rate, k, n, ci95) and the styles of its harmful refusals.

    Args:
        rows: judged sweep rows (``condition``, ``prompt_id``, ``harmful``, ``refused``,
            ``parse_error``, ``response``).
        classifier: anything with ``classify(responses) -> [StyleLabel]`` (e.g.
            :class:`~refusal_atlas.style.RuleStyleClassifier`).
        n_boot: bootstrap resamples for each CI.
        seed: the bootstrap's seed.

    Example:
        >>> from refusal_atlas.style import RuleStyleClassifier
        >>> rows = [{"condition": "baseline", "prompt_id": "p", "harmful": True,
        ...          "refused": True, "response": "I'm sorry, that is illegal."}]
        >>> t = style_rate_table(rows, RuleStyleClassifier(), n_boot=100)["baseline"]
        >>> t["rr"]["k"], t["style_counts"]
        (1, {'SAFETY': 1})
    """
    outcomes = outcomes_by_condition(rows)
    table: dict[str, dict[str, Any]] = {}
    for cid, o in outcomes.items():
        ids = sorted(o["refusals"])
        labels = [lab.style for lab in classifier.classify([o["refusals"][i] for i in ids])] \
            if ids else []
        table[cid] = {
            "rr": bootstrap_rate([o["harmful"][i] for i in sorted(o["harmful"])],
                                 n_boot=n_boot, seed=seed),
            "orr": bootstrap_rate([o["benign"][i] for i in sorted(o["benign"])],
                                  n_boot=n_boot, seed=seed),
            "styles": dict(zip(ids, labels)),
            "style_counts": dict(sorted(Counter(labels).items())),
            "harmful": o["harmful"],
        }
    return table


def style_without_rate(table: Mapping[str, Mapping[str, Any]], test: str, style_ref: str,
                       rate_ref: str = "baseline", *, min_refusals: int = 5,
                       n_perm: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The "style without rate" verdict of condition ``test`` (see the module docstring).

    Returns:
        ``{"supported": True/False/None, "verdict", "measured", "criterion", "details"}``.

    Example:
        >>> t = {"a": {"rr": {"rate": .5, "k": 1, "n": 2}, "styles": {}, "harmful": {}},
        ...      "b": {"rr": {"rate": .5, "k": 1, "n": 2}, "styles": {}, "harmful": {}},
        ...      "baseline": {"rr": {"rate": .5, "k": 1, "n": 2}, "styles": {}, "harmful": {}}}
        >>> style_without_rate(t, "a", "b")["supported"] is None
        True
    """
    criterion = (f"style: total-variation distance between the style distributions of the "
                 f"harmful-prompt refusals under {test} and under {style_ref}, permutation "
                 f"p < {P_LEVEL}; rate: RR under {test} vs {rate_ref}, paired permutation p "
                 f">= {P_LEVEL} (the change is within resampling noise). Both: supported; "
                 f"fewer than {min_refusals} refusals on either style side: not decidable")
    missing = [c for c in (test, style_ref, rate_ref) if c not in table]
    if missing:
        return {"supported": None, "verdict": "not decidable", "criterion": criterion,
                "measured": f"no rows for {', '.join(missing)}", "details": {"missing": missing}}
    a, b, base = table[test], table[style_ref], table[rate_ref]
    styles_a, styles_b = list(a["styles"].values()), list(b["styles"].values())
    shared = sorted(set(a["harmful"]) & set(base["harmful"]))
    tv = total_variation(styles_a, styles_b)
    details: dict[str, Any] = {
        "test": test, "style_ref": style_ref, "rate_ref": rate_ref,
        "rr_test": a["rr"], "rr_rate_ref": base["rr"],
        "styles_test": a.get("style_counts", dict(Counter(styles_a))),
        "styles_ref": b.get("style_counts", dict(Counter(styles_b))),
        "tv": tv, "n_paired": len(shared), "min_refusals": min_refusals, "p_level": P_LEVEL}
    rr_text = (f"RR {test} {_rate_text(a['rr'])} vs {rate_ref} {_rate_text(base['rr'])}")
    if len(styles_a) < min_refusals or len(styles_b) < min_refusals or not shared:
        why = (f"{len(styles_a)} vs {len(styles_b)} refusals to compare styles "
               f"(need {min_refusals} each)" if shared else "no prompt judged under both")
        return {"supported": None, "verdict": "not decidable", "criterion": criterion,
                "measured": f"{rr_text}; {why}", "details": details}
    p_tv = permutation_p_tv(styles_a, styles_b, n_perm=n_perm, seed=seed)
    p_rr = permutation_p_rates([a["harmful"][i] for i in shared],
                               [base["harmful"][i] for i in shared], paired=True,
                               n_perm=n_perm, seed=seed)
    details.update(p_tv=p_tv, p_rr=p_rr)
    style_moves, rate_moves = p_tv < P_LEVEL, p_rr < P_LEVEL
    supported = style_moves and not rate_moves
    verdict = ("style without rate" if supported else
               "style and rate" if style_moves else
               "rate without style" if rate_moves else "neither moves")
    measured = (f"{rr_text} (paired p={p_rr:.3g}, n={len(shared)}); style TV vs {style_ref} "
                f"{tv:.2f} (p={p_tv:.3g}; {len(styles_a)} vs {len(styles_b)} refusals)")
    return {"supported": supported, "verdict": verdict, "criterion": criterion,
            "measured": measured, "details": details}


def _rate_text(r: Mapping[str, Any]) -> str:
    if r.get("rate") is None:
        return "n/a (n=0)"
    ci = r.get("ci95") or [None, None]
    band = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci[0] is not None else ""
    return f"{r['rate']:.2f} ({r['k']}/{r['n']}){band}"


def verdict_finding(experiment: str, question: str, subject: str,
                    result: Mapping[str, Any], **extra: Any) -> Finding:
    """A :class:`Finding` from :func:`style_without_rate`'s result (``extra`` goes into
    its details)."""
    return Finding(experiment, question, measured=result["measured"],
                   criterion=result["criterion"], verdict=result["verdict"],
                   supported=result["supported"], subject=subject,
                   details={**result["details"], **extra})


def public_table(table: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The table for a JSON file: rates and style counts, without per-prompt outcomes."""
    return {cid: {"rr": t["rr"], "orr": t["orr"], "style_counts": t["style_counts"],
                  "n_refusals": len(t["styles"])} for cid, t in table.items()}


def pick_alpha(alphas: Sequence[float], index: int) -> float:
    """The alpha a verdict is taken at: ``alphas[index]`` of the non-zero alphas."""
    nonzero = [a for a in alphas if a != 0]
    if not nonzero:
        raise ValueError("no non-zero alpha to compare at")
    return nonzero[index] if -len(nonzero) <= index < len(nonzero) else nonzero[-1]


__all__ = ["P_LEVEL", "outcomes_by_condition", "pick_alpha", "public_table",
           "style_rate_table", "style_without_rate", "verdict_finding"]
