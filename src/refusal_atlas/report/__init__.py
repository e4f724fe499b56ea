"""The report: one self-contained ``report.html`` and a ``report.md`` summary of a run folder.

* :func:`build_report` reads a run folder's artifacts (never a model) and returns a
  JSON-ready :data:`ReportData`: the run summary, per-stage sections (:mod:`.sections`)
  and the paper's three findings measured on this run (:func:`findings`), each check with
  the numbers it rests on, the paper's value, the criterion used and the artifact the
  numbers come from.
* :func:`render_html` turns it into one HTML page (:mod:`.html`); :func:`render_markdown`
  writes the terminal / pull-request summary (:mod:`.markdown`).
* :func:`write_report` writes both atomically.

The report reads a run folder because rendering a run is its job, but it never imports the
pipeline: which stages are done comes in as ``states``
(:func:`refusal_atlas.pipeline.stage_states`). A section whose stage is missing, disabled or
unknown says so ("not run: ..."); a malformed artifact becomes a note in its section, never
a crash. See ``docs/report.md`` for where each number comes from.

Example:
    >>> from refusal_atlas.pipeline import STAGES, stage_states
    >>> from refusal_atlas.report import build_report, write_report
    >>> data = build_report("runs/qwen", stage_states("runs/qwen", STAGES))  # doctest: +SKIP
    >>> write_report(data, "/tmp/preview")  # doctest: +SKIP
"""

from .build import SECTION_IDS, ReportData, build_report
from .html import CSP, render_html
from .markdown import render_markdown
from .paper_checks import findings
from .write import REPORT_HTML, REPORT_MD, write_report

__all__ = [
    "CSP",
    "REPORT_HTML",
    "REPORT_MD",
    "SECTION_IDS",
    "ReportData",
    "build_report",
    "findings",
    "render_html",
    "render_markdown",
    "write_report",
]
