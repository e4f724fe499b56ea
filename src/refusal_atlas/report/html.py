"""``report.html``: one self-contained page from the report's data.

Jinja2 with autoescape on, so every model generation and prompt is shown as text; figures
embedded as base64 PNG data URIs; a Content-Security-Policy that allows no external
resource and only the page's own small script (pinned by its hash).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2

from .build import SECTION_IDS, ReportData
from .format import alpha_key, fmt, pct, secs
from .sections.samples import GROUP_ORDER

__all__ = ["CSP", "collect_figures", "render_html"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


_SCRIPT = """(function () {
  var q = document.getElementById('sample-filter');
  var g = document.getElementById('sample-group');
  if (!q || !g) { return; }
  function apply() {
    var text = q.value.toLowerCase(), group = g.value;
    var conds = document.querySelectorAll('#samples details.cond');
    for (var i = 0; i < conds.length; i++) {
      var d = conds[i];
      d.hidden = d.getAttribute('data-cond').toLowerCase().indexOf(text) < 0;
      var rows = d.querySelectorAll('.sample');
      for (var j = 0; j < rows.length; j++) {
        rows[j].hidden = group !== '' && rows[j].getAttribute('data-group') !== group;
      }
    }
  }
  q.addEventListener('input', apply);
  g.addEventListener('change', apply);
  function toggle(open) {
    return function () {
      var conds = document.querySelectorAll('#samples details.cond');
      for (var i = 0; i < conds.length; i++) { if (!conds[i].hidden) { conds[i].open = open; } }
    };
  }
  document.getElementById('samples-open').addEventListener('click', toggle(true));
  document.getElementById('samples-close').addEventListener('click', toggle(false));
})();"""


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       f"script-src '{_script_hash(_SCRIPT)}'; base-uri 'none'; form-action 'none'")
"""The page may load nothing from anywhere and run only its own filter script."""


def _lenient(fn: Callable[..., str]) -> Callable[..., str]:
    """A number filter that shows "–" for a value the data lacks (last resort: the sections
    give every key the template reads, None where there is no number)."""
    def filt(x: Any, *args: Any) -> str:
        return fn(None if isinstance(x, jinja2.Undefined) else x, *args)
    return filt


def _template_env(strict: bool = False) -> jinja2.Environment:
    """The page's Jinja environment; ``strict`` makes any key the template reads and the
    data lacks an error (the tests render every kind of run this way)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
        trim_blocks=True, lstrip_blocks=True)
    filters = {"f": fmt, "pct": pct, "ak": alpha_key, "secs": secs}
    env.filters.update(filters if strict else {k: _lenient(v) for k, v in filters.items()})
    return env


def _embed(run_dir: Path, fig: Mapping[str, Any] | None) -> dict | None:
    if not fig:
        return None
    path = run_dir / fig["path"]
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(b"\x89PNG"):
        return None
    return {**fig, "uri": "data:image/png;base64," + base64.b64encode(raw).decode("ascii")}


def collect_figures(data: Mapping[str, Any]) -> list[dict]:
    """Every figure reference (``{path, caption, bytes}``) in the report data, config aside."""
    found: list[dict] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if set(x) >= {"path", "caption", "bytes"}:
                found.append(x)
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk({k: v for k, v in data.items() if k != "config"})
    return found


def render_html(data: ReportData, *, strict: bool = False) -> str:
    """The report as one self-contained HTML page (figures inlined, model text escaped).

    Args:
        data: what :func:`~refusal_atlas.report.build_report` returned; figures are
            read from ``data["run_dir"]``.
        strict: raise on any key the template reads that ``data`` lacks, instead of
            showing nothing there (for tests).

    Example:
        >>> page = render_html(data)  # doctest: +SKIP
    """
    run_dir = Path(data["run_dir"])
    figures = {f["path"]: _embed(run_dir, f) for f in collect_figures(data)}
    template = _template_env(strict).get_template("report.html.j2")
    return template.render(d=data, figs=figures, script=_SCRIPT, csp=CSP,
                           section_ids=SECTION_IDS, groups=GROUP_ORDER,
                           config_json=json.dumps(data.get("config") or {}, indent=2,
                                                  ensure_ascii=False))
