"""Everything for ``metrics.json``, and the compact form a stage returns into ``_done.json``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .dose_response import dose_response_table, rr_per_orr
from .rates import RATE_DEFINITIONS, ablation_table, condition_metrics
from .tradeoff import tradeoff_gap
from .uncertainty import gap_uncertainty

__all__ = ["compact_summary", "summarise"]


def summarise(rows: Sequence[Mapping[str, Any]], *, judge: str, approximate: bool,
              alphas: Mapping[str, Any] | None = None,
              uncertainty: Mapping[str, Any] | None = None) -> dict:
    """Everything for ``metrics.json``: rates per condition, dose-response, trade-off gap.

    Args:
        rows: judged result rows (see :func:`condition_metrics`).
        judge: the judge's name.
        approximate: whether that judge only approximates refusal judging.
        alphas: how the alphas were chosen, recorded as given.
        uncertainty: e.g. ``{"n_boot": 1000, "n_perm": 1000, "seed": 0}`` adds
            :func:`gap_uncertainty` to the trade-off gap (rows need a ``prompt_id``).

    Example:
        >>> summary = summarise(result.rows, judge="substring", approximate=True)  # doctest: +SKIP
        >>> summary["tradeoff_gap"]["value"]  # doctest: +SKIP
    """
    per = condition_metrics(rows)
    table = dose_response_table(per)
    out: dict[str, Any] = {
        "judge": judge,
        "judge_approximate": bool(approximate),
        "judge_note": ("substring matching approximates refusal judging (METHOD.md); "
                       "use --judge wildguard for reference numbers") if approximate else None,
        "definitions": RATE_DEFINITIONS,
        "alphas": dict(alphas) if alphas else None,
        "n_rows": len(rows),
        "conditions": per,
    }
    if table:
        out["dose_response"] = table
        out["tradeoff_gap"] = tradeoff_gap(table)
        if uncertainty and all("prompt_id" in r for r in rows):
            out["tradeoff_gap"]["uncertainty"] = gap_uncertainty(rows, **uncertainty)
        out["rr_per_orr"] = rr_per_orr(table)
    ablation = ablation_table(per)
    if ablation:
        out["ablation"] = ablation
    return out


def compact_summary(summary: Mapping[str, Any]) -> dict:
    """What a stage returns into ``_done.json`` (and the CLI prints).

    Args:
        summary: what :func:`summarise` returned (optionally with a ``sweep`` entry).
    """
    out: dict[str, Any] = {
        "judge": summary["judge"], "judge_approximate": summary["judge_approximate"],
        "n_conditions": len(summary["conditions"]), "n_rows": summary["n_rows"],
        "rates": {cid: {"rr": _r(m["rr"]), "orr": _r(m["orr"])}
                  for cid, m in summary["conditions"].items()},
    }
    if summary.get("alphas"):
        out["alphas"] = summary["alphas"]["alphas"]
    gap = summary.get("tradeoff_gap")
    if gap:
        out["tradeoff_gap"] = {k: gap[k] for k in ("value", "pair", "at_rr", "mean_over_pairs")}
        unc = gap.get("uncertainty")
        if unc:
            out["tradeoff_gap"]["ci95"] = unc["bootstrap"]["value_ci95"]
            if unc["permutation"]:
                out["tradeoff_gap"]["p_value"] = unc["permutation"]["p_value"]
                out["tradeoff_gap"]["null_95"] = unc["permutation"]["null_95"]
    if "sweep" in summary:
        s = summary["sweep"]
        out["sweep"] = {k: s.get(k) for k in ("generation_seconds", "rows_per_s", "tokens_per_s",
                                              "n_generated_rows_planned", "n_aliased_rows")}
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
