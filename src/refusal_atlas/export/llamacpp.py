"""llama.cpp control vectors (GGUF): write and read.

The layout llama.cpp's ``common_control_vector_load`` reads (and repeng's ``export_gguf``
writes): ``general.architecture = "controlvector"``, ``controlvector.model_hint`` (the
model type, e.g. ``llama``), ``controlvector.layer_count`` and one float32 tensor
``direction.{il}`` of ``n_embd`` values per steered layer.

Layer indexing: llama.cpp adds ``direction.{il}`` to the output of its block ``il``
(0-based, ``build_cvec(cur, il)`` after the block's residual add), and never holds a
vector for ``il = 0``: the loader rejects ``direction.0`` and ``llama_adapter_cvec`` keeps
no tensor for layer 0. The output of block ``il`` is ``resid_pre`` of ``il + 1``, so a
``resid_pre L`` direction is written as ``direction.{L-1}``, for ``L = 2 .. n_layers``
(``resid_pre 0`` -- the embeddings -- and ``resid_pre 1`` cannot be expressed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..artifacts import atomic_path
from ..errors import UserError
from .layers import block_output_index, resid_pre_layer

ARCH = "controlvector"
LOWEST_LAYER = 2
"""The lowest ``resid_pre`` layer a llama.cpp control vector can act at."""
_NAME = re.compile(r"^direction\.(\d+)$")


@dataclass
class ControlVector:
    """A control vector as llama.cpp sees it, indexed by *our* ``resid_pre`` layers.

    Example:
        >>> cv = ControlVector({12: torch.ones(4)}, model_hint="qwen2")
        >>> cv.d_model, cv.llamacpp_layers()
        (4, [11])
    """

    vectors: dict[int, torch.Tensor]
    """``{resid_pre layer: float32 [n_embd]}`` (already scaled)."""
    model_hint: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.vectors.values())).numel())

    def llamacpp_layers(self) -> list[int]:
        """llama.cpp's ``il`` of each vector (for ``--control-vector-layer-range``)."""
        return sorted(block_output_index(layer) for layer in self.vectors)


def write_control_vector(path: str | Path, vectors: Mapping[int, torch.Tensor], *,
                         model_hint: str, metadata: Mapping[str, str] | None = None) -> Path:
    """Write a llama.cpp control-vector GGUF.

    Args:
        path: the ``.gguf`` file to write (atomically).
        vectors: ``{resid_pre layer: [n_embd]}``, already multiplied by the strength;
            layers must be 2 or more (see the module docstring).
        model_hint: ``controlvector.model_hint``: the model type (``llama``, ``qwen2``).
        metadata: extra string keys, written as ``controlvector.<key>`` (llama.cpp ignores
            them).

    Example:
        >>> write_control_vector("safety.gguf", {12: 8.0 * d.vector}, model_hint="qwen2")  # doctest: +SKIP
    """
    import gguf  # deferred: only export and import need the GGUF writer

    if not vectors:
        raise UserError("a control vector needs at least one layer")
    low = [layer for layer in vectors if int(layer) < LOWEST_LAYER]
    if low:
        raise UserError(f"llama.cpp control vectors cannot act at resid_pre layer {low[0]}: "
                        f"direction.N adds to the output of block N >= 1, i.e. resid_pre "
                        f"{LOWEST_LAYER} or later")
    sizes = {int(v.numel()) for v in vectors.values()}
    if len(sizes) != 1:
        raise UserError(f"control-vector layers have different sizes {sorted(sizes)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), ARCH)
        writer.add_string(f"{ARCH}.model_hint", model_hint)
        writer.add_uint32(f"{ARCH}.layer_count", len(vectors))
        for key, value in (metadata or {}).items():
            writer.add_string(f"{ARCH}.{key}", str(value))
        for layer in sorted(vectors):
            data = vectors[layer].detach().float().cpu().reshape(-1).numpy().astype(np.float32)
            writer.add_tensor(f"direction.{block_output_index(layer)}", data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def _field_str(reader, key: str) -> str | None:
    """A metadata value as text (numbers and lists too), None when absent or unreadable."""
    fld = reader.get_field(key)
    if fld is None:
        return None
    try:
        value = fld.contents()
    except (IndexError, TypeError, ValueError, UnicodeDecodeError):
        return None
    return None if value is None else str(value)


def read_control_vector(path: str | Path, *, d_model: int | None = None) -> ControlVector:
    """Read a llama.cpp / repeng control-vector GGUF, as llama.cpp would load it.

    Args:
        path: the ``.gguf`` file.
        d_model: the model's ``n_embd``; a file for another width is one line.

    Returns:
        :class:`ControlVector` keyed by our ``resid_pre`` layers (``direction.N`` -> N+1).

    Example:
        >>> cv = read_control_vector("safety.gguf", d_model=896)  # doctest: +SKIP
    """
    import gguf  # deferred: only export and import need the GGUF reader

    path = Path(path)
    if not path.is_file():
        raise UserError(f"control vector not found: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError/struct errors alike
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a readable GGUF file ({reason})") from None
    arch = _field_str(reader, "general.architecture")
    if arch != ARCH:
        raise UserError(f"{path} is not a control vector (general.architecture = {arch!r}, "
                        f"expected {ARCH!r})")
    vectors: dict[int, torch.Tensor] = {}
    for tensor in reader.tensors:
        match = _NAME.match(tensor.name)
        if match is None or int(match.group(1)) == 0:
            raise UserError(f"{path} has tensor {tensor.name!r}; llama.cpp accepts only "
                            "direction.N with N >= 1")
        data = np.asarray(tensor.data)
        if data.dtype != np.float32 or data.size != int(np.prod(tensor.shape)) or len(tensor.shape) != 1:
            raise UserError(f"{path}: {tensor.name} must be a 1-D float32 tensor")
        layer = resid_pre_layer(int(match.group(1)))
        vec = torch.from_numpy(data.copy()).reshape(-1)
        vectors[layer] = vectors[layer] + vec if layer in vectors else vec  # llama.cpp sums
    if not vectors:
        raise UserError(f"{path} holds no direction tensors")
    widths = {int(v.numel()) for v in vectors.values()}
    if len(widths) != 1:
        raise UserError(f"{path}: direction tensors have different sizes {sorted(widths)}")
    width = widths.pop()
    if d_model is not None and width != int(d_model):
        raise UserError(f"{path} is a control vector for n_embd {width}; this model has "
                        f"d_model {d_model}")
    meta = {}
    for key in reader.fields:
        if key.startswith(f"{ARCH}.") and key not in (f"{ARCH}.model_hint", f"{ARCH}.layer_count"):
            value = _field_str(reader, key)
            if value is not None:
                meta[key[len(ARCH) + 1:]] = value
    return ControlVector(dict(sorted(vectors.items())),
                         model_hint=_field_str(reader, f"{ARCH}.model_hint") or "", metadata=meta)
