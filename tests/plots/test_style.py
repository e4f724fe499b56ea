"""Tests for refusal_atlas.plots.style (the refusal-style breakdown figure)."""

from __future__ import annotations

from refusal_atlas.plots.style import plot_style_breakdown
from refusal_atlas.style import StyleLabel, style_summary


def test_style_breakdown_png(tmp_path):
    labels = {"A": [StyleLabel("SAFETY", "", "t"), StyleLabel("GENERIC", "", "t")],
              "B": [StyleLabel("CAPABILITY", "", "t")]}
    summary = {"by_direction": style_summary(labels),
               "baseline": style_summary({"b": [StyleLabel("GENERIC", "", "t")]})["b"]}
    path = plot_style_breakdown(summary, tmp_path / "styles.png")
    assert path == tmp_path / "styles.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
