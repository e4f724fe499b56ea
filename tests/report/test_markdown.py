"""report.md: every heading, every finding's status, no markup from the run."""

from __future__ import annotations


def test_markdown_summary(rendered, data):
    md = rendered[1].read_text(encoding="utf-8")
    assert md.startswith("# refusal-atlas")
    for heading in ("## Findings", "## Geometry", "## Steering", "## Ablation",
                    "## SAE latents", "## Refusal style", "## Timings"):
        assert heading in md
    for f in data["findings"]:
        assert f["status"] in md
    assert "<script" not in md and "<img" not in md
    assert "`steering/metrics.json`" in md
