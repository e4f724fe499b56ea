"""SAE latent steering next to direction steering: RR / ORR side by side, trade-off gaps."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..metrics.tradeoff import pair_gap


def rates_by_curve(metrics: Mapping[str, Any]) -> dict[str, dict[float, dict]]:
    """``{curve label: {alpha: {rr, orr}}}`` from a sweep's metrics ``dose_response`` rows."""
    out: dict[str, dict[float, dict]] = {}
    for r in metrics.get("dose_response", []) or []:
        out.setdefault(r["label"], {})[float(r["alpha"])] = {"rr": r["rr"], "orr": r["orr"]}
    return out


def curve_points(curve: Mapping[float, Mapping[str, Any]]) -> list[tuple[float, float]]:
    """``(RR, ORR)`` of a curve in alpha order, leaving out alphas without both rates."""
    return [(v["rr"], v["orr"]) for _, v in sorted(curve.items())
            if v["rr"] is not None and v["orr"] is not None]


def _mean(xs: Sequence[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def compare_with_directions(sae_metrics: Mapping[str, Any], steering_metrics: Mapping[str, Any],
                            vectors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Side by side: RR / ORR of every SAE curve and of direction steering at each alpha, and
    trade-off gaps (max |ORR difference| at matched RR) between SAE and direction curves.

    Args:
        sae_metrics: the SAE steering sweep's metrics.
        steering_metrics: the direction steering sweep's metrics.
        vectors: the SAE vectors' descriptions (``name``, ``split``), as build_sae_bank gives.
    """
    sae_curves = rates_by_curve(sae_metrics)
    dir_curves = {label: v for label, v in rates_by_curve(steering_metrics).items()
                  if not label.startswith("vector/")}
    alphas = sorted({a for c in (*sae_curves.values(), *dir_curves.values()) for a in c})
    split_of = {f"vector/{v['name']}": v.get("split") for v in vectors}
    rows = []
    for a in alphas:
        row: dict[str, Any] = {"alpha": a}
        ds = [c[a] for c in dir_curves.values() if a in c]
        row["directions_mean"] = ({"rr": _mean([d["rr"] for d in ds]),
                                   "orr": _mean([d["orr"] for d in ds]), "n": len(ds)}
                                  if ds else None)
        for label, c in sae_curves.items():
            row[label] = c.get(a)
            split = split_of.get(label)
            if split and split in dir_curves:
                row[f"direction/{split}"] = dir_curves[split].get(a)
        rows.append(row)

    gaps = {}
    for label, c in sae_curves.items():
        p = curve_points(c)
        if not p:
            continue
        per = {}
        for dname, dc in dir_curves.items():
            q = curve_points(dc)
            if q:
                per[dname] = pair_gap(p, q)["gap"]
        valid = [g for g in per.values() if g is not None]
        split = split_of.get(label)
        gaps[label] = {"own_direction": per.get(split) if split else None,
                       "max_over_directions": max(valid) if valid else None,
                       "mean_over_directions": _mean(valid), "per_direction": per}
    dir_gap = (steering_metrics.get("tradeoff_gap") or {})
    return {
        "definition": "RR / ORR at each alpha (SAE curves: alpha on the latent-sum vector as "
                      "steered; see vectors.json for normalisation); gaps: max |ORR difference| "
                      "at matched RR between an SAE curve and direction curves (metrics.pair_gap)",
        "alphas": alphas, "rows": rows, "gaps": gaps,
        "sae_alpha_mode": (sae_metrics.get("alphas") or {}).get("vector_norm"),
        "directions_tradeoff_gap": {k: dir_gap.get(k)
                                    for k in ("value", "pair", "mean_over_pairs")},
        "judge": sae_metrics.get("judge"), "steering_judge": steering_metrics.get("judge"),
        "same_judge": sae_metrics.get("judge") == steering_metrics.get("judge"),
    }


def _cell(v: Mapping[str, Any] | None) -> str:
    if not v:
        return ""
    rr = "-" if v.get("rr") is None else f"{v['rr']:.2f}"
    orr = "-" if v.get("orr") is None else f"{v['orr']:.2f}"
    return f"{rr} / {orr}"


def comparison_markdown(comparison: Mapping[str, Any], *, compact: bool = False) -> str:
    """The comparison as a Markdown table (``compact``: without the trade-off gap list)."""
    rows = comparison["rows"]
    cols: list[str] = ["directions_mean"]
    for r in rows:
        for key in r:
            if key not in ("alpha", "directions_mean") and key not in cols:
                cols.append(key)
    # SAE curve first, then its split's direction
    ordered = ["directions_mean"] + [c for c in cols if c.startswith("vector/")]
    for c in list(ordered):
        if c.startswith("vector/"):
            name = c.split("/", 1)[1]
            split = name.split(":", 1)[1] if ":" in name else None
            if split and f"direction/{split}" in cols:
                ordered.insert(ordered.index(c) + 1, f"direction/{split}")
    header = "| alpha | " + " | ".join(c.replace("vector/", "") for c in ordered) + " |"
    lines = ["RR / ORR, SAE latent steering next to direction steering"
             + ("" if comparison.get("same_judge") else " (different judges!)"), "",
             header, "|" + "---|" * (len(ordered) + 1)]
    for r in rows:
        lines.append(f"| {r['alpha']:g} | " + " | ".join(_cell(r.get(c)) for c in ordered) + " |")
    if not compact:
        lines.append("")
        lines.append("trade-off gap (max |ORR difference| at matched RR) of each SAE curve:")
        for label, g in comparison["gaps"].items():
            own = g.get("own_direction")
            mx = g.get("max_over_directions")
            lines.append(f"- {label.replace('vector/', '')}: vs its split's direction "
                         f"{'-' if own is None else f'{own:.3f}'}; max over directions "
                         f"{'-' if mx is None else f'{mx:.3f}'}")
        dg = comparison.get("directions_tradeoff_gap") or {}
        if dg.get("value") is not None:
            lines.append(f"- between directions (steering stage): max {dg['value']:.3f}, mean over "
                         f"pairs {dg['mean_over_pairs']:.3f}")
    return "\n".join(lines) + "\n"



__all__ = ["compare_with_directions", "comparison_markdown", "curve_points", "rates_by_curve"]
