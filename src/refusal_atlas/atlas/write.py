"""Write the atlas: its figures, ``compare.html``, ``compare.md`` and ``atlas.json``."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import atomic_path, write_json
from ..report.sections.common import figure
from .build import AtlasData
from .figures import plot_cosine_panels, plot_cosine_scatter, plot_dose_panels
from .html import render_atlas_html
from .markdown import render_atlas_markdown

__all__ = ["ATLAS_JSON", "COMPARE_HTML", "COMPARE_MD", "write_atlas"]

COMPARE_HTML = "compare.html"
COMPARE_MD = "compare.md"
ATLAS_JSON = "atlas.json"


def write_atlas(data: AtlasData, out_dir: str | Path) -> dict[str, Path]:
    """Draw the figures into ``out_dir/figures`` and write ``compare.html``, ``compare.md``
    and ``atlas.json`` (the data, figure references included) atomically.

    Args:
        data: what :func:`~refusal_atlas.atlas.build_atlas` returned (figure references are
            added to it).
        out_dir: the folder to write (made when missing).

    Example:
        >>> paths = write_atlas(build_atlas(runs), "runs/compare")  # doctest: +SKIP
        >>> paths["html"]  # doctest: +SKIP
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    order, models = data["split_order"], data["models"]
    plot_cosine_panels(models, order, out / "figures" / "cosine.png")
    plot_dose_panels(models, order, out / "figures" / "dose_response.png")
    scatter = plot_cosine_scatter(data["pairs"], models, out / "figures" / "cosine_scatter.png")
    if scatter is None:
        (out / "figures" / "cosine_scatter.png").unlink(missing_ok=True)
    data["figures"] = {
        "cosine": figure(out, "figures/cosine.png", "cosine similarity of each model's "
                                                    "directions, one split order (grey: missing)"),
        "dose": figure(out, "figures/dose_response.png", "RR (solid) and ORR (dashed) against "
                                                         "alpha, one panel per model"),
        "scatter": figure(out, "figures/cosine_scatter.png", "the same pair of splits' cosine "
                                                             "in one model against the other"),
    }
    paths = {"html": out / COMPARE_HTML, "md": out / COMPARE_MD, "json": out / ATLAS_JSON}
    page, md = render_atlas_html(data, out), render_atlas_markdown(data)
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(md, encoding="utf-8")
    write_json(paths["json"], data)
    return paths
