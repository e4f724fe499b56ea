"""Dose-response: one curve per direction (kind, name, layer) over its alphas.

A curve's baseline is its alpha = 0 point when the grid has no explicit alpha = 0.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

__all__ = ["RR_PER_ORR_DEFINITION", "curve_key", "curve_label", "curves",
           "dose_response_table", "rr_per_orr"]

RR_PER_ORR_DEFINITION = (
    "Per curve: (RR at the largest alpha - RR at alpha 0) / (ORR at the largest alpha - ORR at "
    "alpha 0): refusal gained on harmful prompts per unit of over-refusal on benign ones. None "
    "when ORR did not rise (then see d_rr and d_orr)."
)


def curve_key(condition_id: str) -> str:
    """``steer/X/a=10`` -> ``steer/X``; ``steer/X/L=12/a=10`` -> ``steer/X/L=12``.

    Args:
        condition_id: a sweep condition's id.
    """
    head, _, tail = condition_id.rpartition("/")
    return head if tail.startswith("a=") else condition_id


def curve_label(key: str) -> str:
    """A curve's display name: its key without the ``steer/`` prefix.

    Args:
        key: what :func:`curve_key` returned.
    """
    return key[len("steer/"):] if key.startswith("steer/") else key


def dose_response_table(metrics: Mapping[str, Mapping[str, Any]],
                        baseline_id: str = "baseline") -> list[dict]:
    """One row per (curve, alpha) of the additive conditions, sorted by curve then alpha.

    A curve without an explicit alpha = 0 gets the baseline as its alpha = 0 point
    (``from_baseline: true``).

    Args:
        metrics: :func:`condition_metrics` of the sweep.
        baseline_id: the unsteered condition's id.

    Example:
        >>> table = dose_response_table(condition_metrics(result.rows))  # doctest: +SKIP
        >>> [(r["label"], r["alpha"], r["rr"], r["orr"]) for r in table]  # doctest: +SKIP
    """
    base = metrics.get(baseline_id)
    rows: list[dict] = []
    curves: "OrderedDict[str, list[dict]]" = OrderedDict()
    for cid, m in metrics.items():
        if m.get("kind") not in ("steer", "vector") or m.get("alpha") is None:
            continue
        key = curve_key(cid)
        curves.setdefault(key, []).append(_table_row(key, m, float(m["alpha"]), cid, False))
    for key, points in curves.items():
        if base is not None and not any(p["alpha"] == 0 for p in points):
            first = points[0]
            points.append(_table_row(key, {**base, "kind": first["kind"],
                                           "direction": first["direction"],
                                           "layer": first["layer"]}, 0.0, baseline_id, True))
        rows.extend(sorted(points, key=lambda p: p["alpha"]))
    return rows


def _table_row(key: str, m: Mapping[str, Any], alpha: float, cid: str, from_baseline: bool) -> dict:
    return {"curve": key, "label": curve_label(key), "kind": m.get("kind"),
            "direction": m.get("direction"), "layer": m.get("layer"), "alpha": alpha,
            "condition": cid, "rr": m.get("rr"), "orr": m.get("orr"),
            "n_harmful": m.get("parsed_harmful"), "n_benign": m.get("parsed_benign"),
            "parse_errors": m.get("parse_errors"), "accuracy": m.get("accuracy"),
            "from_baseline": from_baseline}


def curves(table: Sequence[Mapping[str, Any]]) -> "OrderedDict[str, list[dict]]":
    """``{curve label: [table rows sorted by alpha]}``.

    Args:
        table: the dose-response table (:func:`dose_response_table`).
    """
    out: "OrderedDict[str, list[dict]]" = OrderedDict()
    for row in table:
        out.setdefault(row["label"], []).append(dict(row))
    for label in out:
        out[label].sort(key=lambda r: r["alpha"])
    return out


def rr_per_orr(table: Sequence[Mapping[str, Any]]) -> dict:
    """Per curve: RR gained per unit of ORR from alpha 0 to the largest alpha.

    Args:
        table: the dose-response table (:func:`dose_response_table`).
    """
    out: dict[str, Any] = {"definition": RR_PER_ORR_DEFINITION, "curves": {}}
    for label, rows in curves(table).items():
        zero = next((r for r in rows if r["alpha"] == 0), None)
        top = max(rows, key=lambda r: r["alpha"])
        entry: dict[str, Any] = {"alpha": top["alpha"], "d_rr": None, "d_orr": None,
                                 "rr_per_orr": None}
        if zero is not None and top is not zero and None not in (
                zero["rr"], zero["orr"], top["rr"], top["orr"]):
            d_rr, d_orr = top["rr"] - zero["rr"], top["orr"] - zero["orr"]
            entry.update(d_rr=d_rr, d_orr=d_orr, rr_per_orr=d_rr / d_orr if d_orr > 0 else None)
        out["curves"][label] = entry
    return out
