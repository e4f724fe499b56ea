"""Directions made elsewhere, as :class:`~refusal_atlas.directions.Direction` s.

Three sources, never pickle:

* a llama.cpp / repeng control-vector GGUF (``direction.N`` -> ``resid_pre N+1``);
* a steering-vectors ``SteeringVector`` (``layer_activations[i]`` -> ``resid_pre i+1``)
  or the safetensors file :func:`~refusal_atlas.export.steering_vectors.write_steering_vector_file`
  writes;
* plain safetensors: one ``[d_model]`` tensor per direction, its ``resid_pre`` layer in the
  file's ``refusal_atlas`` metadata (what ``export --format safetensors`` writes), in a
  ``NAME@LAYER`` tensor name, or in a ``directions.json`` beside it (a run's folder).

A source with one layer gives one direction named after the file (or tensor); one with
several gives ``NAME.L<layer>`` per layer. An imported direction is the unit vector, and
its ``projection_gap`` is the norm the source stored (the strength it was made to steer
with), so alphas in units of the gap mean the same for imported and own directions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..artifacts import read_tensor_file
from ..directions import Direction, load_directions
from ..errors import UserError
from .llamacpp import read_control_vector
from .steering_vectors import FORMAT as SV_FORMAT
from .steering_vectors import from_steering_vector, read_steering_vector_file

_AT_LAYER = re.compile(r"^(?P<name>.+)@(?P<layer>\d+)$")


def imported_direction(name: str, vector: torch.Tensor, layer: int, *, source: str) -> Direction:
    """A :class:`Direction` from a bare vector at ``resid_pre`` of ``layer``.

    Example:
        >>> d = imported_direction("x", torch.tensor([3.0, 4.0]), 5, source="test")
        >>> d.vector.tolist(), d.projection_gap, d.layer
        ([0.6000000238418579, 0.800000011920929], 5.0, 5)
    """
    vector = vector.detach().float().cpu().reshape(-1)
    norm = float(vector.norm())
    if not norm > 0:
        raise UserError(f"imported direction {name!r} is all zeros")
    return Direction(split=name, vector=vector / norm, raw_norm=norm, hr_proj_mean=norm,
                     bc_proj_mean=0.0, n_hr=0, n_bc=0, layer=int(layer), position=-1,
                     model=f"imported:{source}")


def _named(stem: str, per_layer: Mapping[int, torch.Tensor], source: str) -> dict[str, Direction]:
    if len(per_layer) == 1:
        layer, vec = next(iter(per_layer.items()))
        return {stem: imported_direction(stem, vec, layer, source=source)}
    return {f"{stem}.L{layer}": imported_direction(f"{stem}.L{layer}", vec, layer, source=source)
            for layer, vec in sorted(per_layer.items())}


def directions_from_steering_vector(sv: Any, name: str, *, n_layers: int | None = None
                                    ) -> dict[str, Direction]:
    """The directions a ``steering_vectors.SteeringVector`` holds.

    Example:
        >>> dirs = directions_from_steering_vector(sv, "caa")  # doctest: +SKIP
    """
    return _named(name, from_steering_vector(sv, n_layers=n_layers), "steering-vectors")


def _plain_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]
                       ) -> dict[str, Direction]:
    recorded: dict[str, Any] = {}
    if "refusal_atlas" in meta:
        try:
            recorded = json.loads(meta["refusal_atlas"]).get("directions", {})
        except (json.JSONDecodeError, AttributeError):
            raise UserError(f"{path}: its refusal_atlas metadata is not valid JSON") from None
    beside = path.parent / "directions.json"
    if not recorded and beside.is_file() and not any(_AT_LAYER.match(k) for k in tensors):
        return load_directions(path.parent)
    out: dict[str, Direction] = {}
    for key, vec in tensors.items():
        match = _AT_LAYER.match(key)
        if key in recorded and "layer" in recorded[key]:
            name, layer = key, int(recorded[key]["layer"])
        elif match:
            name, layer = match["name"], int(match["layer"])
        else:
            raise UserError(f"{path}: tensor {key!r} has no layer; name it {key}@LAYER "
                            "(resid_pre layer) or export it with refusal-atlas")
        if vec.dim() != 1:
            raise UserError(f"{path}: tensor {key!r} has shape {tuple(vec.shape)}, not [d_model]")
        out[name] = imported_direction(name, vec, layer, source=str(path))
    if not out:
        raise UserError(f"{path} holds no tensors")
    return out


def read_directions_file(path: str | Path, *, d_model: int | None = None) -> dict[str, Direction]:
    """Directions from a control-vector ``.gguf`` or a ``.safetensors`` file (plain or
    steering-vectors layout).

    Args:
        path: the file.
        d_model: the model's width; vectors of another width are one line.

    Example:
        >>> dirs = read_directions_file("repeng-happy.gguf", d_model=896)  # doctest: +SKIP
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"direction file not found: {path}")
    stem = path.name.split(".")[0] or path.stem
    if path.suffix.lower() == ".gguf":
        cv = read_control_vector(path, d_model=d_model)
        found = _named(stem, cv.vectors, f"gguf:{path}")
    elif path.suffix.lower() == ".safetensors":
        tensors, meta = read_tensor_file(path)
        if meta.get("format") == SV_FORMAT:
            found = _named(stem, read_steering_vector_file(path), f"steering-vectors:{path}")
        else:
            found = _plain_safetensors(path, tensors, meta)
    else:
        raise UserError(f"{path}: direction files are .gguf (llama.cpp control vector) or "
                        ".safetensors (plain or steering-vectors); never pickle")
    if d_model is not None:
        for name, d in found.items():
            if d.vector.numel() != int(d_model):
                raise UserError(f"{path}: direction {name!r} has {d.vector.numel()} values; this "
                                f"model has d_model {d_model}")
    return found


def read_extra_directions(paths: Sequence[str | Path], *, taken: Sequence[str] = (),
                          d_model: int | None = None) -> dict[str, Direction]:
    """All directions of ``paths``, checked for names that clash with each other or with
    ``taken`` (the run's own directions).

    Example:
        >>> extra = read_extra_directions(["happy.gguf"], taken=["CocoNot_Safety"])  # doctest: +SKIP
    """
    out: dict[str, Direction] = {}
    for path in paths:
        for name, direction in read_directions_file(path, d_model=d_model).items():
            if name in out or name in taken:
                raise UserError(f"extra direction {name!r} from {path} has the name of "
                                f"{'another extra direction' if name in out else 'a direction of the run'}; "
                                "rename the file")
            out[name] = direction
    return out
