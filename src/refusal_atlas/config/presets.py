"""The presets: ``demo`` (sized for a 2-core CPU and the default model) and ``paper`` (the
paper's settings for 9B/8B models on a GPU), as YAML files shipped with the package."""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
