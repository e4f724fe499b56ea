"""The atlas's figures: every model's cosine heatmap side by side in one split order, each
model's dose-response curves (one colour per split, the same in every panel) and the
cross-model scatter of off-diagonal cosines. Drawn on the headless canvas of
:mod:`refusal_atlas.plots.figures`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..plots.figures import new_figure, palette, save_png

__all__ = ["plot_cosine_panels", "plot_cosine_scatter", "plot_dose_panels"]

MAX_COLS = 3


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, MAX_COLS)
    return math.ceil(n / cols), cols


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def plot_cosine_panels(models: Sequence[Mapping[str, Any]], order: Sequence[str],
                       path: str | os.PathLike) -> Path:
    """One annotated cosine heatmap per model, side by side, rows and columns in ``order``;
    a split the model lacks is a grey row and column marked "–".

    Args:
        models: ``{"label", "aligned_cosine"}`` per model (:func:`~refusal_atlas.atlas.build_atlas`).
        order: the common split order.
        path: PNG to write.

    Example:
        >>> plot_cosine_panels(data["models"], data["split_order"], "cosine.png")  # doctest: +SKIP
    """
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm  # matplotlib is slow to import; defer it

    n = len(order)
    rows, cols = _grid(len(models))
    side = max(3.6, 0.42 * n + 2.0)
    fig = new_figure((cols * side + 1.0, rows * side))
    norm = TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=1.0)
    font = 8 if n <= 8 else max(4, 8 - (n - 8) // 2)
    im = None
    for k, m in enumerate(models):
        ax = fig.add_subplot(rows, cols, k + 1)
        mat = np.array([[_nan(v) for v in row] for row in m["aligned_cosine"]], dtype=float)
        if mat.size == 0:
            mat = np.full((n, n), np.nan)
        ax.set_facecolor("#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(mat), cmap="RdBu_r", norm=norm, interpolation="nearest")
        for i in range(n):
            for j in range(n):
                v = mat[i, j]
                ax.text(j, i, "–" if v != v else f"{v:.2f}", ha="center", va="center",
                        fontsize=font, color="white" if v == v and abs(v) > 0.6 else "black")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(order, rotation=55, ha="right", rotation_mode="anchor", fontsize=font)
        ax.set_yticklabels(order if k % cols == 0 else [""] * n, fontsize=font)
        ax.set_title(m["label"], fontsize=10)
    if im is not None:
        cbar = fig.colorbar(im, ax=fig.axes, fraction=0.02, pad=0.02)
        cbar.set_label("cosine similarity (grey: split missing)")
    return save_png(fig, path)


def plot_dose_panels(models: Sequence[Mapping[str, Any]], order: Sequence[str],
                     path: str | os.PathLike) -> Path:
    """Each model's dose-response: RR (solid) and ORR (dashed) against alpha per direction,
    one panel per model, one colour per split in every panel.

    Args:
        models: ``{"label", "steering": {"table"}}`` per model (the table is the report's
            dose-response pivot: ``rows`` of ``{label, cells: {alpha: {rr, orr}}}``).
        order: the common split order (fixes the colours).
        path: PNG to write.
    """
    from matplotlib.lines import Line2D  # matplotlib is slow to import; defer it

    colours = dict(zip(order, palette(len(order))))
    rows, cols = _grid(len(models))
    fig = new_figure((cols * 4.6 + 2.2, rows * 3.6))
    used: dict[str, Any] = {}
    for k, m in enumerate(models):
        ax = fig.add_subplot(rows, cols, k + 1)
        table = (m.get("steering") or {}).get("table") or {}
        for r in table.get("rows") or []:
            pts = sorted((float(a), c.get("rr"), c.get("orr")) for a, c in r["cells"].items())
            colour = colours.get(r["label"], "grey")
            used.setdefault(r["label"], colour)
            ax.plot([p[0] for p in pts], [_nan(p[1]) for p in pts], "-o", color=colour, ms=3)
            ax.plot([p[0] for p in pts], [_nan(p[2]) for p in pts], "--s", color=colour, ms=2,
                    alpha=0.85)
        if not table.get("rows"):
            reason = (m.get("steering") or {}).get("reason") or "no dose-response rows"
            ax.text(0.5, 0.5, reason[:60], ha="center", va="center", transform=ax.transAxes,
                    fontsize=8, color="#5b6475", wrap=True)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("alpha", fontsize=8)
        ax.set_ylabel("rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_title(m["label"], fontsize=10)
    handles = [Line2D([], [], color=c, marker="o", label=s) for s, c in used.items()]
    handles += [Line2D([], [], color="black", ls="-", label="RR (harmful)"),
                Line2D([], [], color="black", ls="--", label="ORR (benign)")]
    fig.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_png(fig, path)


def plot_cosine_scatter(pairs: Sequence[Mapping[str, Any]],
                        models: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """For each pair of models with a correlation: the cosine of each shared pair of splits
    in one model against the other, with r and p in the title. None when no pair has one.

    Args:
        pairs: the atlas's ``pairs`` (``{a, b, r, p_value, common}``).
        models: the atlas's ``models`` (``{label, geometry: {names, cosine}}``).
        path: PNG to write.
    """
    from .similarity import align_matrix

    shown = [p for p in pairs if p.get("r") is not None][:6]
    if not shown:
        return None
    by_label = {m["label"]: m["geometry"] for m in models}
    rows, cols = _grid(len(shown))
    fig = new_figure((cols * 3.8, rows * 3.6))
    for k, p in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        common = p["common"]
        ga, gb = by_label[p["a"]], by_label[p["b"]]
        ma = align_matrix(ga["names"], ga["cosine"], common)
        mb = align_matrix(gb["names"], gb["cosine"], common)
        xs = [ma[i, j] for i in range(len(common)) for j in range(i + 1, len(common))]
        ys = [mb[i, j] for i in range(len(common)) for j in range(i + 1, len(common))]
        ax.scatter(xs, ys, s=14, color="#2451a6", alpha=0.8)
        ax.set_xlabel(f"cosine in {p['a']}", fontsize=8)
        ax.set_ylabel(f"cosine in {p['b']}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_title(f"r = {p['r']:.2f}, p = {p['p_value']:.3f} ({p['n_pairs']} pairs)", fontsize=9)
    return save_png(fig, path)
