"""Text about a latent analysis: the labelling sheet and the console summary."""

from __future__ import annotations

from refusal_atlas.sae.describe import describe_analysis, latents_markdown

from .planted import planted_analysis


def test_latents_markdown_sheet():
    text = latents_markdown(planted_analysis())
    assert "core latent 0" in text and "tail (C) latent 6" in text and "https://np/0" in text


def test_describe_analysis_summary():
    text = describe_analysis(planted_analysis())
    assert text.startswith("top-3 latents of 3 splits")
    assert "shared core" in text and "core latent 0 (3 splits)" in text
