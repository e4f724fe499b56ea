"""The geometry figures: cosine heatmap, dendrograms and the MDS map of the directions.

matplotlib's object-oriented API on the Agg canvas (:mod:`.figures`), so drawing never
touches pyplot's global state or needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.cluster import hierarchy

from ..errors import UserError
from ..geometry import LINKAGES, PRIMARY_LINKAGE, GeometryResult
from .figures import new_figure, palette, save_png

__all__ = ["FIGURE_FILES", "plot_cosine_heatmap", "plot_dendrogram", "plot_mds",
           "save_geometry_figures"]

FIGURE_FILES = {
    "cosine_heatmap": "cosine_heatmap.png",
    "dendrogram_average": "dendrogram_average.png",
    "dendrogram_complete": "dendrogram_complete.png",
    "mds": "mds.png",
}


def _plot_labels(result: GeometryResult, k: int | None, linkage: str) -> list[int] | None:
    lk = result.clustering.linkages[linkage]
    k = lk.best_k if k is None else k
    if k is None:
        return None
    if k not in lk.labels:
        raise UserError(f"no clustering with k={k} (available: {sorted(lk.labels)})")
    return lk.labels[k]


def plot_cosine_heatmap(result: GeometryResult, path: str | os.PathLike, *,
                        k: int | None = None, linkage: str = PRIMARY_LINKAGE) -> Path:
    """Annotated cosine heatmap, rows/columns in dendrogram leaf order, clusters boxed.

    Args:
        result: the geometry result to draw.
        path: PNG to write.
        k: clusters to box (default: the best k of ``linkage``).
        linkage: whose leaf order and clusters to use.

    Example:
        >>> plot_cosine_heatmap(result, "h.png", k=3, linkage="complete")  # doctest: +SKIP
    """
    from matplotlib.colors import TwoSlopeNorm  # matplotlib is slow to import; defer it

    n = len(result.names)
    order = result.clustering.linkages[linkage].leaf_order
    labels = _plot_labels(result, k, linkage)
    mat = result.cosine[np.ix_(order, order)]
    names = [result.names[i] for i in order]
    side = max(5.0, 0.62 * n + 3.0)
    fig = new_figure((side + 1.2, side))
    ax = fig.add_subplot(1, 1, 1)
    norm = TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=1.0)
    im = ax.imshow(mat, cmap="RdBu_r", norm=norm, interpolation="nearest")
    fontsize = 9 if n <= 12 else max(5, 9 - (n - 12) // 3)
    for i in range(n):
        for j in range(n):
            v = mat[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=50, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticklabels(names, fontsize=9)
    title = f"Cosine similarity of refusal directions ({linkage} linkage order)"
    if labels is not None:
        ordered = [labels[i] for i in order]
        colours = palette(max(labels) + 1)
        for tick, lab in zip(ax.get_xticklabels(), ordered):
            tick.set_color(colours[lab])
        for tick, lab in zip(ax.get_yticklabels(), ordered):
            tick.set_color(colours[lab])
        start = 0
        for pos in range(1, n + 1):
            if pos == n or ordered[pos] != ordered[start]:
                ax.add_patch(_rect(start - 0.5, pos - start, ax))
                start = pos
        kk = max(labels) + 1
        title += f", k={kk} clusters boxed"
    ax.set_title(title, fontsize=10)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("cosine similarity")
    return save_png(fig, path)


def _rect(start: float, size: int, ax):
    from matplotlib.patches import Rectangle  # matplotlib is slow to import; defer it

    return Rectangle((start, start), size, size, fill=False, edgecolor="black", linewidth=2.0,
                     transform=ax.transData, clip_on=False)


def plot_dendrogram(result: GeometryResult, path: str | os.PathLike, linkage: str = "average",
                    *, k: int | None = None) -> Path:
    """Dendrogram (leaves on the left, distance 1 - cosine), links coloured by cluster.

    Args:
        result: the geometry result to draw.
        path: PNG to write.
        linkage: which linkage's tree to draw.
        k: clusters to colour and cut at (default: the best k).
    """
    if linkage not in result.clustering.linkages:
        raise UserError(f"no {linkage!r} linkage in this result "
                        f"(have {', '.join(result.clustering.linkages)})")
    lk = result.clustering.linkages[linkage]
    n = len(result.names)
    z = lk.linkage
    labels = _plot_labels(result, k, linkage)
    fig = new_figure((8.5, max(3.0, 0.45 * n + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    colours = palette(max(labels) + 1) if labels is not None else None
    from matplotlib.colors import to_hex  # matplotlib is slow to import; defer it

    leaf_sets: dict[int, set[int]] = {i: {i} for i in range(n)}
    for row in range(z.shape[0]):
        leaf_sets[n + row] = leaf_sets[int(z[row, 0])] | leaf_sets[int(z[row, 1])]

    def link_colour(node: int) -> str:
        if labels is None:
            return "#444444"
        labs = {labels[i] for i in leaf_sets[node]}
        return to_hex(colours[labs.pop()]) if len(labs) == 1 else "#888888"

    hierarchy.dendrogram(z, labels=list(result.names), orientation="right", ax=ax,
                         link_color_func=link_colour, leaf_font_size=9)
    if labels is not None:
        for tick in ax.get_yticklabels():
            idx = result.names.index(tick.get_text())
            tick.set_color(colours[labels[idx]])
        kk = max(labels) + 1
        heights = np.sort(z[:, 2])
        if kk <= n - 1 and kk >= 2:
            cut = (heights[n - 1 - kk] + heights[n - kk]) / 2.0
            ax.axvline(cut, color="black", linestyle="--", linewidth=1)
            sil = lk.silhouette.get(kk)
            ax.set_title(f"{linkage} linkage on 1 - cosine; cut at k={kk}"
                         + (f" (silhouette {sil:.3f})" if sil is not None else ""), fontsize=10)
    else:
        ax.set_title(f"{linkage} linkage on 1 - cosine", fontsize=10)
    ax.set_xlabel("distance (1 - cosine)")
    ax.invert_yaxis()  # first leaf at the top, as in the heatmap
    return save_png(fig, path)


def plot_mds(result: GeometryResult, path: str | os.PathLike, *, k: int | None = None) -> Path:
    """2-D MDS map of the directions, coloured by the best-k cluster, points labelled.

    Args:
        result: the geometry result to draw.
        path: PNG to write.
        k: clusters to colour by (default: the best k of the primary linkage).
    """
    labels = _plot_labels(result, k, result.clustering.primary)
    coords = result.mds
    n = len(result.names)
    span_x = float(np.ptp(coords[:, 0])) or 1.0
    span_y = float(np.ptp(coords[:, 1]))
    width = 9.0
    height = float(np.clip(width * (span_y + 0.3 * span_x) / (1.75 * span_x), 3.5, 9.0))
    fig = new_figure((width, height))
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=60, color="#444444", zorder=3)
    else:
        colours = palette(max(labels) + 1)
        for c in range(max(labels) + 1):
            idx = [i for i in range(n) if labels[i] == c]
            ax.scatter(coords[idx, 0], coords[idx, 1], s=70, color=colours[c], zorder=3,
                       edgecolor="black", linewidth=0.5, label=f"cluster {c + 1} ({len(idx)})")
        ax.legend(loc="best", fontsize=8, frameon=True)
    pad = 0.15 * span_x
    ax.set_xlim(coords[:, 0].min() - 2 * pad, coords[:, 0].max() + 3 * pad)
    ax.set_ylim(coords[:, 1].min() - pad, coords[:, 1].max() + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.apply_aspect()  # fix the final data->pixel transform before placing labels
    _place_labels(fig, ax, coords, result.names)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    kk = None if labels is None else max(labels) + 1
    ax.set_title(f"MDS of 1 - cosine (stress-1 {result.mds_stress:.3f})"
                 + (f", coloured by k={kk} clusters" if kk else ""), fontsize=10)
    return save_png(fig, path)


def _place_labels(fig, ax, coords: np.ndarray, names: Sequence[str]) -> None:
    """Label points, choosing for each the offset that overlaps placed labels the least."""
    offsets = [(6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"),
               (-6, -4, "right", "top"), (0, 8, "center", "bottom"), (0, -8, "center", "top")]
    renderer = fig.canvas.get_renderer()
    placed: list = []
    points = [ax.transData.transform(c) for c in coords]

    def cost(bbox, own: int) -> float:
        total = 0.0
        for other in placed:
            w = min(bbox.x1, other.x1) - max(bbox.x0, other.x0)
            h = min(bbox.y1, other.y1) - max(bbox.y0, other.y0)
            if w > 0 and h > 0:
                total += w * h
        for j, (px, py) in enumerate(points):  # covering another marker is bad too
            if j != own and bbox.x0 - 6 < px < bbox.x1 + 6 and bbox.y0 - 6 < py < bbox.y1 + 6:
                total += 60.0
        return total

    for i, name in enumerate(names):
        best = None
        for dx, dy, ha, va in offsets:
            text = ax.annotate(name, (coords[i, 0], coords[i, 1]), xytext=(dx, dy),
                               textcoords="offset points", fontsize=8, ha=ha, va=va)
            bbox = text.get_window_extent(renderer)
            c = cost(bbox, i)
            if best is None or c < best[0]:
                if best is not None:
                    best[1].remove()
                best = (c, text, bbox)
            else:
                text.remove()
            if c == 0:
                break
        placed.append(best[2])


def save_geometry_figures(result: GeometryResult, out_dir: str | os.PathLike
                          ) -> dict[str, Path]:
    """Write the heatmap, one dendrogram per linkage and the MDS map into ``out_dir``.

    Args:
        result: what :func:`refusal_atlas.geometry.analyze_geometry` returned.
        out_dir: folder to write into (created if missing).

    Returns:
        figure name (a key of :data:`FIGURE_FILES`) -> path.

    Example:
        >>> save_geometry_figures(result, "out/geometry")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"cosine_heatmap": plot_cosine_heatmap(result,
                                                   out_dir / FIGURE_FILES["cosine_heatmap"])}
    for method in LINKAGES:
        if method in result.clustering.linkages:
            key = f"dendrogram_{method}"
            paths[key] = plot_dendrogram(result, out_dir / FIGURE_FILES[key], linkage=method)
    paths["mds"] = plot_mds(result, out_dir / FIGURE_FILES["mds"])
    return paths
