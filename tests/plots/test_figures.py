"""The shared figure helpers: headless PNGs, written atomically; distinct colours."""

from __future__ import annotations

from refusal_atlas.plots.figures import new_figure, palette, save_png


def test_save_png_writes_a_complete_png_and_no_temporary_file(tmp_path):
    fig = new_figure((2.0, 1.5))
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    path = save_png(fig, tmp_path / "sub" / "line.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["line.png"]


def test_palette_gives_eleven_splits_eleven_colours():
    assert len(set(palette(11))) == 11
    assert len(palette(3)) == 3 and palette(3) == palette(10)[:3]
