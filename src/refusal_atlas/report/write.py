"""Write ``report.html`` and ``report.md`` atomically."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import atomic_path
from .build import ReportData
from .html import render_html
from .markdown import render_markdown

__all__ = ["REPORT_HTML", "REPORT_MD", "write_report"]

REPORT_HTML = "report.html"
REPORT_MD = "report.md"


def write_report(data: ReportData, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (atomically) into ``out_dir``; returns their
    paths.

    Args:
        data: what :func:`~refusal_atlas.report.build_report` returned.
        out_dir: an existing folder (the run folder, or anywhere else for a preview).

    Example:
        >>> html_path, md_path = write_report(data, "/tmp/preview")  # doctest: +SKIP
    """
    out = Path(out_dir)
    html_path, md_path = out / REPORT_HTML, out / REPORT_MD
    page = render_html(data)
    md = render_markdown(data)
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(md_path) as tmp:
        tmp.write_text(md, encoding="utf-8")
    return html_path, md_path
