"""The style stage's figure: the share of each refusal style per steering direction."""

from __future__ import annotations

from pathlib import Path

from ..style.labels import STYLES
from .figures import new_figure, save_png

__all__ = ["plot_style_breakdown"]

_COLOURS = {"CAPABILITY": "#4c72b0", "SAFETY": "#c44e52", "UNDERSPEC": "#55a868",
            "GENERIC": "#8c8c8c", "NONREFUSAL": "#e5c494"}


def plot_style_breakdown(summary: dict, path: Path) -> Path:
    """One horizontal stacked bar per direction: the share of each refusal style.

    Args:
        summary: the style summary (``by_direction`` and, optionally, ``baseline``).
        path: the PNG to write.
    """
    by_direction = dict(summary["by_direction"])
    if summary.get("baseline", {}).get("n"):
        by_direction = {"(baseline)": summary["baseline"], **by_direction}
    names = list(by_direction)
    fig = new_figure((8, 0.45 * max(len(names), 2) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    left = [0.0] * len(names)
    for style in STYLES:
        shares = []
        for name in names:
            counts = by_direction[name]["counts"]
            total = sum(counts[s] for s in STYLES) or 1
            shares.append(counts[style] / total)
        ax.barh(names, shares, left=left, color=_COLOURS[style], label=style)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of steered refusals")
    ax.invert_yaxis()
    ax.legend(ncol=5, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return save_png(fig, path)
