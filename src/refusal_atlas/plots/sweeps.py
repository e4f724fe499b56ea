"""The sweep figures: dose-response, the RR-ORR trade-off and the ablation bars.

Drawn from the tables :mod:`refusal_atlas.metrics` computes (``dose_response``,
``tradeoff_gap``, ``ablation``), so a figure shows exactly what ``metrics.json`` holds.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..metrics import curves
from ..metrics.tradeoff import interpolate, orr_of_rr
from .figures import new_figure, palette, save_png

__all__ = ["plot_ablation", "plot_dose_response", "plot_tradeoff"]


def _judge_title(judge: str | None) -> str:
    return f" (judge: {judge})" if judge else ""


def plot_dose_response(table: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
                       judge: str | None = None) -> Path:
    """RR (solid) and ORR (dashed) against alpha, one colour per direction.

    Args:
        table: the dose-response table (``metrics.json`` -> ``dose_response``).
        path: PNG to write.
        judge: the judge's name, for the title.

    Example:
        >>> plot_dose_response(summary["dose_response"], "dose_response.png")  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D  # matplotlib is slow to import; defer it

    cs = curves(table)
    fig = new_figure((7.5, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    for colour, (label, rows) in zip(palette(len(cs)), cs.items()):
        a = [r["alpha"] for r in rows]
        ax.plot(a, [_nan(r["rr"]) for r in rows], "-o", color=colour, label=label, ms=4)
        ax.plot(a, [_nan(r["orr"]) for r in rows], "--s", color=colour, ms=3, alpha=0.9)
    ax.set_xlabel("alpha (residual-stream units)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_title("Dose-response: RR (solid) and ORR (dashed)" + _judge_title(judge))
    style = [Line2D([], [], color="black", ls="-", marker="o", label="RR (harmful)"),
             Line2D([], [], color="black", ls="--", marker="s", label="ORR (benign)")]
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles + style, labels + [h.get_label() for h in style], fontsize=7,
              loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_png(fig, path)


def plot_tradeoff(table: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
                  gap: Mapping[str, Any] | None = None, judge: str | None = None) -> Path:
    """ORR against RR along each direction's alpha sweep; the largest gap is marked.

    Args:
        table: the dose-response table (``metrics.json`` -> ``dose_response``).
        path: PNG to write.
        gap: the trade-off gap (``metrics.json`` -> ``tradeoff_gap``), to mark its largest pair.
        judge: the judge's name, for the title.
    """
    cs = curves(table)
    fig = new_figure((6.4, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    for colour, (label, rows) in zip(palette(len(cs)), cs.items()):
        p = [(r["rr"], r["orr"], r["alpha"]) for r in rows if r["rr"] is not None
             and r["orr"] is not None]
        if not p:
            continue
        ax.plot([x for x, _, _ in p], [y for _, y, _ in p], "-o", color=colour, label=label, ms=4)
    base = next((r for r in table if r["alpha"] == 0 and r["rr"] is not None
                 and r["orr"] is not None), None)
    if base is not None:
        ax.plot([base["rr"]], [base["orr"]], marker="*", color="black", ms=12, ls="none",
                label="alpha = 0")
    if gap and gap.get("value") is not None:
        rr = gap["at_rr"]
        pts = {label: [(r["rr"], r["orr"]) for r in rows if r["rr"] is not None
                       and r["orr"] is not None] for label, rows in cs.items()}
        ya = interpolate(rr, *orr_of_rr(pts[gap["pair"][0]]))
        yb = interpolate(rr, *orr_of_rr(pts[gap["pair"][1]]))
        ax.plot([rr, rr], [ya, yb], color="red", lw=2, alpha=0.7,
                label=f"max gap {gap['value']:.2f}")
    ax.set_xlabel("RR (refusal rate, harmful)")
    ax.set_ylabel("ORR (over-refusal rate, benign)")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_title("Trade-off along each direction" + _judge_title(judge))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_png(fig, path)


def plot_ablation(table: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
                  baseline: Mapping[str, Any] | None = None) -> Path:
    """RR and ORR after ablating each direction (bars), baseline as horizontal lines.

    Args:
        table: the ablation table (``metrics.json`` -> ``ablation``).
        path: PNG to write.
        baseline: the unsteered condition's metrics, drawn as horizontal lines.
    """
    fig = new_figure((max(5.0, 0.7 * len(table) + 2.5), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(table)))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], [_nan(r["rr"], 0.0) for r in table], w, label="RR (harmful)",
           color="#c44e52")
    ax.bar([x + w / 2 for x in xs], [_nan(r["orr"], 0.0) for r in table], w, label="ORR (benign)",
           color="#4c72b0")
    if baseline is not None:
        if baseline.get("rr") is not None:
            ax.axhline(baseline["rr"], color="#c44e52", ls="--", lw=1, label="baseline RR")
        if baseline.get("orr") is not None:
            ax.axhline(baseline["orr"], color="#4c72b0", ls="--", lw=1, label="baseline ORR")
    ax.set_xticks(xs)
    ax.set_xticklabels([r["direction"] for r in table], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.03)
    ax.set_ylabel("rate")
    ax.set_title("Directional ablation")
    ax.legend(fontsize=7)
    return save_png(fig, path)


def _nan(x: float | None, default: float = math.nan) -> float:
    return default if x is None else float(x)
