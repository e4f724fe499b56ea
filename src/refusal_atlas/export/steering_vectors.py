"""The steering-vectors library: to and from its ``SteeringVector``.

``steering_vectors.SteeringVector(layer_activations, layer_type="decoder_block")`` adds
``layer_activations[i]`` to the *output* of decoder block ``i`` (a forward hook on
``model.layers[i]``, every token position by default). The output of block ``i`` is our
``resid_pre`` of ``i + 1``, so a ``resid_pre L`` direction is stored under key ``L - 1``
(``resid_pre 0``, the embeddings, cannot be expressed). Only ``layer_type =
"decoder_block"`` is a residual-stream position; the other layer types (``mlp``,
``self_attn``, norms) are not read.

The library has no file format of its own (people pickle the object); ours is a
safetensors file with one tensor per library layer index, named by that index, and
``{"format": "steering-vectors", "layer_type": "decoder_block"}`` in its metadata::

    from safetensors.torch import load_file
    sv = SteeringVector({int(k): v for k, v in load_file(path).items()}, "decoder_block")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from ..artifacts import read_tensor_file, write_tensors
from ..errors import UserError
from .layers import block_output_index, resid_pre_layer

FORMAT = "steering-vectors"
LAYER_TYPE = "decoder_block"
LOWEST_LAYER = 1
"""The lowest ``resid_pre`` layer a steering-vectors ``decoder_block`` vector can act at."""


def _steering_vector_class():
    try:
        from steering_vectors import SteeringVector  # deferred: an optional dependency
    except ImportError:
        raise UserError("the steering-vectors package is not installed: pip install --no-deps "
                        "steering-vectors (it pins transformers<5; --no-deps keeps ours)") from None
    return SteeringVector


def to_steering_vector(vectors: Mapping[int, torch.Tensor]) -> Any:
    """A ``steering_vectors.SteeringVector`` that adds ``vectors`` where our hooks would.

    Args:
        vectors: ``{resid_pre layer: [d_model]}`` (already scaled), layers >= 1.

    Example:
        >>> sv = to_steering_vector({12: 8.0 * d.vector})  # doctest: +SKIP
        >>> with sv.apply(lm.model):                       # doctest: +SKIP
        ...     ra.generate(lm, ["How do I bake bread?"])
    """
    return _steering_vector_class()(layer_activations=library_layers(vectors),
                                    layer_type=LAYER_TYPE)


def library_layers(vectors: Mapping[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """``{resid_pre L: v}`` -> ``{L - 1: v}`` (float32), the library's ``layer_activations``.

    Example:
        >>> library_layers({3: torch.ones(2)})
        {2: tensor([1., 1.])}
    """
    low = [layer for layer in vectors if int(layer) < LOWEST_LAYER]
    if low:
        raise UserError(f"steering-vectors cannot act at resid_pre layer {low[0]}: its "
                        "decoder_block vectors add to a block's output (resid_pre 1 or later)")
    return {block_output_index(layer): v.detach().float().cpu().reshape(-1)
            for layer, v in sorted(vectors.items())}


def from_steering_vector(sv: Any, *, n_layers: int | None = None) -> dict[int, torch.Tensor]:
    """``{resid_pre layer: vector}`` from a ``SteeringVector`` (or anything with its
    ``layer_activations`` and ``layer_type`` attributes).

    Args:
        sv: the steering vector.
        n_layers: the model's block count, needed only for negative layer indices.

    Example:
        >>> from types import SimpleNamespace
        >>> from_steering_vector(SimpleNamespace(layer_activations={2: torch.ones(2)},
        ...                                      layer_type="decoder_block"))
        {3: tensor([1., 1.])}
    """
    layer_type = getattr(sv, "layer_type", LAYER_TYPE)
    if layer_type != LAYER_TYPE:
        raise UserError(f"a steering vector of layer_type {layer_type!r} does not act on the "
                        f"residual stream; only {LAYER_TYPE!r} can be read")
    acts = getattr(sv, "layer_activations", None)
    if not isinstance(acts, Mapping) or not acts:
        raise UserError("the steering vector has no layer_activations")
    out = {}
    for index, vec in acts.items():
        index = int(index)
        if index < 0:
            if n_layers is None:
                raise UserError(f"steering vector layer {index} is negative; give n_layers")
            index += int(n_layers)
        out[resid_pre_layer(index)] = torch.as_tensor(vec).detach().float().cpu().reshape(-1)
    return dict(sorted(out.items()))


def write_steering_vector_file(path: str | Path, vectors: Mapping[int, torch.Tensor], *,
                               metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a steering vector as safetensors (tensor names = the library's layer indices).

    Args:
        path: the ``.safetensors`` file.
        vectors: ``{resid_pre layer: [d_model]}`` (already scaled).
        metadata: recorded as JSON under ``refusal_atlas`` in the file's metadata.

    Example:
        >>> write_steering_vector_file("safety.sv.safetensors", {12: 8.0 * d.vector})  # doctest: +SKIP
    """
    tensors = {str(k): v for k, v in library_layers(vectors).items()}
    return write_tensors(path, tensors, metadata={
        "format": FORMAT, "layer_type": LAYER_TYPE,
        "refusal_atlas": json.dumps(dict(metadata or {}), sort_keys=True, default=str)})


def read_steering_vector_file(path: str | Path) -> dict[int, torch.Tensor]:
    """``{resid_pre layer: vector}`` from a file :func:`write_steering_vector_file` wrote.

    Example:
        >>> vectors = read_steering_vector_file("safety.sv.safetensors")  # doctest: +SKIP
    """
    tensors, meta = read_tensor_file(path)
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a steering-vectors file (metadata format = "
                        f"{meta.get('format')!r})")
    try:
        acts = {int(k): v for k, v in tensors.items()}
    except ValueError:
        raise UserError(f"{path}: steering-vectors tensor names must be layer numbers") from None
    return from_steering_vector(_Plain(acts, meta.get("layer_type", LAYER_TYPE)))


class _Plain:
    """The two attributes of a ``SteeringVector``, without needing the package."""

    def __init__(self, layer_activations: dict, layer_type: str):
        self.layer_activations = layer_activations
        self.layer_type = layer_type
