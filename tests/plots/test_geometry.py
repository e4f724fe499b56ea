"""Tests for refusal_atlas.plots.geometry: heatmap, dendrograms and MDS figures."""

from __future__ import annotations

import numpy as np
import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.geometry import analyze_geometry, save_geometry
from refusal_atlas.plots.geometry import (
    FIGURE_FILES,
    plot_cosine_heatmap,
    plot_dendrogram,
    save_geometry_figures,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

LONG_NAMES = [
    "WildGuard_all", "XSTest_all", "CocoNot_Humanizing", "CocoNot_Incomplete",
    "CocoNot_Indeterminate", "CocoNot_Safety", "CocoNot_Unsupported",
    "SorryBench_HateSpeech_1-5", "SorryBench_CrimesTorts_6-24",
    "SorryBench_Inappropriate_25-39", "SorryBench_Advice_40-44",
]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_geometry_stage_files_are_json_and_readable_figures(tmp_path):
    rng = np.random.default_rng(11)
    base = rng.normal(size=64)
    dirs = {n: base * (i % 2) + rng.normal(size=64) for i, n in enumerate(LONG_NAMES)}
    res = analyze_geometry(dirs)
    # what the geometry stage writes: the JSON, then the figures
    paths = {**save_geometry(res, tmp_path / "geometry"),
             **save_geometry_figures(res, tmp_path / "geometry")}
    assert set(paths) == {"json", "cosine_heatmap", "dendrogram_average", "dendrogram_complete",
                          "mds"}
    for key, filename in FIGURE_FILES.items():
        assert paths[key].name == filename
        w, h = _png_size(paths[key])
        assert w > 400 and h > 250
        assert paths[key].stat().st_size > 15_000
    assert paths["json"].name == "geometry.json"
    assert not list((tmp_path / "geometry").glob(".*.tmp"))  # atomic writes left nothing
    # the heatmap can be drawn for another k and the other linkage
    extra = plot_cosine_heatmap(res, tmp_path / "h3.png", k=3, linkage="complete")
    assert _png_size(extra)[0] > 400
    with pytest.raises(UserError):
        plot_dendrogram(res, tmp_path / "x.png", linkage="ward")


def test_two_directions_without_clusters_still_get_every_figure(tmp_path):
    res = analyze_geometry({"a": np.array([1.0, 0.0, 0.0]), "b": np.array([1.0, 1.0, 0.0])})
    paths = save_geometry_figures(res, tmp_path)
    assert all(p.exists() for p in paths.values())
