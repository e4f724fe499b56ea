"""``report``: one self-contained ``report.html`` and a ``report.md`` from the run's artifacts."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...progress import console
from ...report import build_report, write_report
from ...report.sections.beyond import BEYOND_STAGES
from ..stage import Stage, settings_of
from ..states import stage_states

READS = ("geometry", "steering", "ablation", "style", "sae_analysis", "sae_steering",
         *BEYOND_STAGES)
"""Stages the report shows; a disabled one (the beyond stages by default) is skipped."""


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    root = ctx.run.root
    data = build_report(root, stage_states(root, ctx.stages, ctx.config.to_dict()))
    html_path, md_path = write_report(data, root)
    write_json(out_dir / "findings.json", {"findings": data["findings"],
                                           "problems": data["problems"]})
    for fd in data["findings"]:
        console.print(f"{fd['title']}: {fd['status']}")
    return {"html": html_path.relative_to(root).as_posix(),
            "md": md_path.relative_to(root).as_posix(), "bytes": html_path.stat().st_size,
            "findings": {fd["id"]: fd["status"] for fd in data["findings"]},
            "problems": data["problems"]}


STAGE = Stage("report", READS, lambda c: settings_of(c.report), run,
              "report.html (figures embedded) and report.md", needs_model=False,
              outputs=("findings.json",))
