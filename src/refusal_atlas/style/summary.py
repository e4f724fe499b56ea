"""Summaries of refusal styles: per condition, per direction and prompt side.

:func:`style_summary` gives per-condition counts, the dominant refusal style and its
share among refusals ("purity"); :func:`steered_refusals` picks the responses a steered
condition (alpha > 0) made the judge call a refusal, next to the unsteered baseline's
refusals; :func:`summarize` groups labelled rows by direction, side and condition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UserError
from .labels import REFUSAL_STYLES, STYLES, UNPARSED, StyleLabel

__all__ = ["steered_refusals", "style_summary", "summarize"]


def steered_refusals(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(refusals under alpha > 0 additive conditions, refusals of the unsteered baseline).

    Args:
        rows: steering result rows (``kind``, ``alpha``, ``refused``, ``prompt_id`` ...).
    """
    steered = [r for r in rows if r.get("kind") in ("steer", "vector")
               and float(r.get("alpha") or 0) > 0 and r.get("refused")]
    baseline = {r["prompt_id"]: r for r in rows if r.get("kind") == "baseline" and r.get("refused")}
    return steered, list(baseline.values())


def summarize(labelled: list[dict]) -> dict[str, Any]:
    """Style summaries by direction, by direction and prompt side, and by condition.

    Args:
        labelled: rows with ``style``, ``evidence``, ``classifier``, ``harmful``,
            ``direction`` and ``condition``.
    """
    groups: dict[str, dict[str, list[StyleLabel]]] = {
        "by_direction": defaultdict(list), "by_direction_side": defaultdict(list),
        "by_condition": defaultdict(list)}
    for row in labelled:
        label = StyleLabel(row["style"], row["evidence"], row["classifier"])
        side = "harmful" if row["harmful"] else "benign"
        groups["by_direction"][row["direction"]].append(label)
        groups["by_direction_side"][f"{row['direction']} | {side}"].append(label)
        groups["by_condition"][row["condition"]].append(label)
    return {name: style_summary(dict(g)) for name, g in groups.items()}


def style_summary(
    labels_by_condition: Mapping[str, Sequence[StyleLabel]],
) -> dict[str, dict[str, Any]]:
    """Per condition (direction, alpha, ...): style counts, dominant refusal style, purity.

    ``counts`` has every style of :data:`STYLES` plus ``UNPARSED``. ``n_refusals`` counts
    the four refusal styles; ``dominant`` is the most frequent of them (ties: first in
    :data:`STYLES` order, all tied styles listed in ``tied``), ``purity`` its share of
    ``n_refusals``. NONREFUSAL and UNPARSED are reported but excluded from dominance;
    ``dominant`` and ``purity`` are ``None`` when there is no refusal.
    """
    summary: dict[str, dict[str, Any]] = {}
    for condition, labels in labels_by_condition.items():
        counts = {s: 0 for s in (*STYLES, UNPARSED)}
        for label in labels:
            style = label.style if isinstance(label, StyleLabel) else str(label)
            if style not in counts:
                raise UserError(f"Unknown refusal style {style!r} in condition {condition!r}.")
            counts[style] += 1
        n_ref = sum(counts[s] for s in REFUSAL_STYLES)
        dominant = purity = None
        tied: list[str] = []
        if n_ref:
            top = max(counts[s] for s in REFUSAL_STYLES)
            tied = [s for s in REFUSAL_STYLES if counts[s] == top]
            dominant = tied[0]
            purity = top / n_ref
        summary[condition] = {
            "n": len(labels),
            "counts": counts,
            "n_refusals": n_ref,
            "nonrefusal": counts["NONREFUSAL"],
            "unparsed": counts[UNPARSED],
            "dominant": dominant,
            "purity": purity,
            "tied": tied if len(tied) > 1 else [],
        }
    return summary
