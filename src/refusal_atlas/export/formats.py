"""One direction (or several) written in the format another tool reads.

Strength: ``alpha`` is in residual-stream units, as in ``refusal-atlas steer --alphas``;
the default is the direction's own ``projection_gap`` (how far refused harmful and
complied benign prompts sit apart along it). Layers: the direction's own ``resid_pre``
layer, or every layer of ``layers`` (llama.cpp users often steer a band of layers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..artifacts import write_tensors
from ..errors import UserError
from . import llamacpp, steering_vectors
from .layers import check_layers, layer_vectors


def steering_layers(direction, *, alpha: float | None = None, layers: Sequence[int] | None = None,
                    n_layers: int | None = None, lowest: int = 0,
                    tool: str = "steering") -> tuple[dict[int, torch.Tensor], float]:
    """``({resid_pre layer: alpha * unit vector}, alpha)`` for one direction.

    Example:
        >>> vecs, a = steering_layers(d, layers=[10, 11])  # doctest: +SKIP
    """
    alpha = float(direction.projection_gap if alpha is None else alpha)
    chosen = list(layers) if layers else [direction.layer]
    top = n_layers if n_layers is not None else max(max(chosen), 0)
    return layer_vectors(direction.vector, check_layers(chosen, top, lowest=lowest, tool=tool),
                         alpha), alpha


def _record(direction, alpha: float, layers: Sequence[int]) -> dict[str, Any]:
    return {"direction": direction.split, "alpha": alpha, "resid_pre_layers": list(layers),
            "direction_layer": direction.layer, "projection_gap": direction.projection_gap,
            "model": direction.model}


def direction_to_llamacpp(direction, path: str | Path, *, model_hint: str,
                          alpha: float | None = None, layers: Sequence[int] | None = None,
                          n_layers: int | None = None) -> Path:
    """Write one direction as a llama.cpp control vector (``direction.{L-1}`` per layer L).

    Example:
        >>> direction_to_llamacpp(d, "safety.gguf", model_hint="qwen2", n_layers=24)  # doctest: +SKIP
    """
    vectors, alpha = steering_layers(direction, alpha=alpha, layers=layers, n_layers=n_layers,
                                     lowest=llamacpp.LOWEST_LAYER, tool="llama.cpp")
    meta = {k: json.dumps(v) if not isinstance(v, str) else v
            for k, v in _record(direction, alpha, list(vectors)).items()}
    return llamacpp.write_control_vector(path, vectors, model_hint=model_hint,
                                         metadata={f"refusal_atlas.{k}": v for k, v in meta.items()})


def direction_to_steering_vector(direction, *, alpha: float | None = None,
                                 layers: Sequence[int] | None = None,
                                 n_layers: int | None = None) -> Any:
    """One direction as a ``steering_vectors.SteeringVector`` (key ``L - 1`` per layer L).

    Example:
        >>> sv = direction_to_steering_vector(d)  # doctest: +SKIP
    """
    vectors, _ = steering_layers(direction, alpha=alpha, layers=layers, n_layers=n_layers,
                                 lowest=steering_vectors.LOWEST_LAYER, tool="steering-vectors")
    return steering_vectors.to_steering_vector(vectors)


def direction_to_steering_vector_file(direction, path: str | Path, *, alpha: float | None = None,
                                      layers: Sequence[int] | None = None,
                                      n_layers: int | None = None) -> Path:
    """One direction saved in the steering-vectors safetensors layout.

    Example:
        >>> direction_to_steering_vector_file(d, "safety.sv.safetensors")  # doctest: +SKIP
    """
    vectors, alpha = steering_layers(direction, alpha=alpha, layers=layers, n_layers=n_layers,
                                     lowest=steering_vectors.LOWEST_LAYER, tool="steering-vectors")
    return steering_vectors.write_steering_vector_file(
        path, vectors, metadata=_record(direction, alpha, list(vectors)))


def directions_to_safetensors(directions: Mapping[str, Any], path: str | Path) -> Path:
    """Unit directions in one plain safetensors file; each one's layer, gap and model in
    the ``refusal_atlas`` metadata (what :func:`~refusal_atlas.export.imports.read_directions_file`
    reads back).

    Example:
        >>> directions_to_safetensors(dirs, "directions.safetensors")  # doctest: +SKIP
    """
    if not directions:
        raise UserError("no directions to export")
    meta = {name: {"layer": d.layer, "convention": "resid_pre", "position": d.position,
                   "projection_gap": d.projection_gap, "raw_norm": d.raw_norm, "model": d.model}
            for name, d in directions.items()}
    return write_tensors(Path(path), {n: d.vector.float() for n, d in directions.items()},
                         metadata={"format": "refusal-atlas directions export v1",
                                   "refusal_atlas": json.dumps({"directions": meta})})
