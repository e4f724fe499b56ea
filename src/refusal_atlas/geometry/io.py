"""Reading and writing ``geometry.json`` (the figures are drawn by ``plots.geometry``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..artifacts import read_json, write_json
from ..errors import UserError
from .result import GeometryResult

__all__ = ["GEOMETRY_JSON", "load_geometry", "save_geometry"]

GEOMETRY_JSON = "geometry.json"


def save_geometry(result: GeometryResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``geometry.json`` into ``out_dir``; returns ``{"json": path}``.

    The figures are written by :func:`refusal_atlas.plots.geometry.save_geometry_figures`.

    Args:
        result: what :func:`analyze_geometry` returned.
        out_dir: folder to write into (created if missing).

    Example:
        >>> save_geometry(analyze_geometry(dirs), "out/geometry")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"json": write_json(out_dir / GEOMETRY_JSON, result.to_dict())}


def load_geometry(out_dir: str | os.PathLike) -> GeometryResult:
    """Read a result written by :func:`save_geometry` (a folder or the JSON file itself).

    Args:
        out_dir: the folder holding ``geometry.json``, or the file itself.

    Example:
        >>> load_geometry("runs/demo/geometry").clusters(2)  # doctest: +SKIP
    """
    path = Path(out_dir)
    if path.is_dir():
        path = path / GEOMETRY_JSON
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise UserError(f"{path} does not hold a geometry result")
    try:
        return GeometryResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is not a valid geometry result ({exc})") from None
