"""Matplotlib figures for the stages: headless, written atomically as PNG.

Figures are created on their own Agg canvas instead of through pyplot, so stages never
touch pyplot's global state or need a display, and a killed run never leaves half a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..artifacts import atomic_path

DPI = 120


def new_figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def palette(n: int) -> list:
    """n distinguishable colours: tab10 up to ten series, tab20 beyond (11 splits)."""
    from matplotlib import colormaps

    base = list(colormaps["tab20" if n > 10 else "tab10"].colors)
    return [base[i % len(base)] for i in range(n)]
