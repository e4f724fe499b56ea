"""Cosine-similarity matrix of the per-split refusal directions, and its input checks.

Directions may be numpy arrays or torch tensors of any float dtype; everything is
converted to float64 numpy here, so the rest of the geometry package only sees
validated float64 matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import UserError

__all__ = ["check_cosine", "cosine_distance", "cosine_matrix", "stack_directions", "to_numpy"]


def to_numpy(x: Any, what: str) -> np.ndarray:
    """float64 numpy copy of a numpy array or torch tensor (any dtype, any device).

    Args:
        x: array-like or ``torch.Tensor``.
        what: how the value is named in the error message when it is not numeric.
    """
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().to("cpu").float().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{what} is not a numeric array (got {type(x).__name__})") from None
    return arr


def stack_directions(directions: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """Validate the directions and stack them as rows of a float64 [n, d] matrix.

    Args:
        directions: split name -> direction [d_model]; at least two, all of the same
            width, finite and non-zero.
    """
    if not isinstance(directions, Mapping):
        raise UserError("directions must be a mapping from split name to vector")
    names = [str(k) for k in directions]
    if len(names) < 2:
        raise UserError(
            f"geometry needs at least 2 refusal directions, got {len(names)}"
            + (f" ({names[0]})" if names else "")
        )
    rows = []
    dim: int | None = None
    first = None
    for name, vec in directions.items():
        arr = to_numpy(vec, f"direction {name!r}")
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise UserError(
                f"direction {name!r} must be a vector [d_model], got shape {tuple(arr.shape)}"
            )
        if dim is None:
            dim, first = arr.shape[0], name
        elif arr.shape[0] != dim:
            raise UserError(
                f"directions have different dimensions: {first!r} has {dim}, "
                f"{name!r} has {arr.shape[0]}"
            )
        if not np.all(np.isfinite(arr)):
            raise UserError(f"direction {name!r} contains NaN or infinite values")
        if float(np.linalg.norm(arr)) == 0.0:
            raise UserError(f"direction {name!r} is the zero vector; it has no direction")
        rows.append(arr)
    if dim == 0:
        raise UserError("directions are empty vectors (d_model = 0)")
    return names, np.stack(rows)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def cosine_matrix(directions: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """Pairwise cosine similarity of the directions (numpy or torch, any float dtype).

    Returns the split names in the mapping's insertion order and a symmetric float64
    [n, n] matrix with an exact unit diagonal, clipped to [-1, 1]. The vectors are
    normalised here, so they need not be exactly unit length.

    Args:
        directions: split name -> direction [d_model] (numpy or torch).

    Example:
        >>> names, cos = cosine_matrix({"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0])})
        >>> names, round(float(cos[0, 1]), 4)
        (['a', 'b'], 0.7071)
    """
    names, mat = stack_directions(directions)
    unit = _unit_rows(mat)
    return names, _symmetric_unit_diagonal(unit @ unit.T)


def check_cosine(names: Sequence[str], cos: Any) -> tuple[list[str], np.ndarray]:
    """Validate a precomputed cosine matrix; returns it symmetrised with a unit diagonal.

    Args:
        names: one unique name per row.
        cos: square, symmetric (to 1e-6), finite matrix with entries in [-1, 1].
    """
    names = [str(n) for n in names]
    cos = to_numpy(cos, "cosine matrix")
    n = len(names)
    if n < 2:
        raise UserError(f"geometry needs at least 2 refusal directions, got {n}")
    if len(set(names)) != n:
        dup = sorted({x for x in names if names.count(x) > 1})
        raise UserError(f"split names must be unique; repeated: {', '.join(dup)}")
    if cos.shape != (n, n):
        raise UserError(f"cosine matrix must be {n}x{n} for {n} names, got shape {cos.shape}")
    if not np.all(np.isfinite(cos)):
        raise UserError("cosine matrix contains NaN or infinite values")
    if np.max(np.abs(cos - cos.T)) > 1e-6:
        raise UserError("cosine matrix is not symmetric")
    if np.max(np.abs(cos)) > 1.0 + 1e-6:
        raise UserError("cosine matrix has entries outside [-1, 1]")
    return names, _symmetric_unit_diagonal(cos)


def _symmetric_unit_diagonal(cos: np.ndarray) -> np.ndarray:
    """Average with the transpose and clip, so rounding never breaks symmetry or [-1, 1]."""
    cos = np.clip((cos + cos.T) / 2.0, -1.0, 1.0)
    np.fill_diagonal(cos, 1.0)
    return cos


def cosine_distance(cos: np.ndarray) -> np.ndarray:
    """Square distance matrix ``1 - cos`` with tiny negatives clipped and a zero diagonal.

    Args:
        cos: square cosine matrix.
    """
    dist = np.clip(1.0 - np.asarray(cos, dtype=np.float64), 0.0, None)
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    return dist

