"""``compare.html``: the atlas as one self-contained page, in the report's style.

The report's page machinery is reused as it is: its Jinja environment (autoescape on, the
number filters), its stylesheet (``report/templates/style.css``), its figure embedding
(base64 PNG data URIs) and its Content-Security-Policy (no external resource), here with
no script allowed at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from ..report.html import CSP, _embed, _template_env, collect_figures
from .build import AtlasData

__all__ = ["ATLAS_CSP", "render_atlas_html"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
ATLAS_CSP = re.sub(r"script-src [^;]+", "script-src 'none'", CSP)
"""The report's policy, with no script at all allowed: this page has none."""


def render_atlas_html(data: AtlasData, out_dir: str | Path, *, strict: bool = False) -> str:
    """The atlas as one HTML page (figures inlined, every name from a run folder escaped).

    Args:
        data: what :func:`~refusal_atlas.atlas.build_atlas` returned, with the figure
            references :func:`~refusal_atlas.atlas.write_atlas` adds.
        out_dir: the folder the figure paths are relative to.
        strict: raise on any key the template reads that ``data`` lacks (for tests).

    Example:
        >>> page = render_atlas_html(data, "runs/compare")  # doctest: +SKIP
    """
    env = _template_env(strict)
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)), env.loader])
    figures = {f["path"]: _embed(Path(out_dir), f) for f in collect_figures(data)}
    return env.get_template("compare.html.j2").render(d=data, figs=figures, csp=ATLAS_CSP)
