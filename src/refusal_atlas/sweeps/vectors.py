"""The vectors a sweep's conditions name: ``{name: LayerVector}``.

A :class:`LayerVector` is a vector plus the ``resid_pre`` layer it is added at. It is not a
:class:`~refusal_atlas.directions.Direction` (no pools, no projection gap, not necessarily
unit): directions enter through :func:`vectors_from_directions`, and anything else that is
"a per-row additive vector at some layer" (sums of SAE decoder rows,
:func:`latent_sum_vector`) is just another entry of the same mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from .. import hooks
from ..errors import UserError
from .conditions import Condition


@dataclass
class LayerVector:
    """A vector conditions can name: added as ``alpha * vector`` at ``resid_pre`` of
    ``layer`` (``steer`` / ``vector``), or projected out everywhere (``ablate``, unit only).

    Args:
        vector: ``[d_model]``; stored as a float32 CPU tensor.
        layer: the ``resid_pre`` layer an additive condition uses when it names no layer.
        source: where the vector comes from (``directions``, ``sae``, ...).
        meta: anything to keep with it (projection gap, latent ids).
        edit: ``hidden [B, T, d] -> hidden``, applied at ``resid_pre`` of ``layer`` by an
            ``edit`` condition naming this vector (:func:`hooks.edit_resid_pre`); must act
            on each position alone. Local only: it is code, so remote workers cannot get it.

    Example:
        >>> v = LayerVector(torch.ones(4), layer=2)
        >>> v.norm
        2.0
    """

    vector: torch.Tensor
    layer: int
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    basis: torch.Tensor | None = None
    """``[k, d_model]`` orthonormal rows: an ``ablate`` condition then projects out their
    span (:func:`hooks.ablate_subspace`) instead of ``vector`` alone (:func:`span_vector`)."""
    edit: Callable[[torch.Tensor], torch.Tensor] | None = None
    """What an ``edit`` condition naming this vector does to the hidden state."""

    def __post_init__(self) -> None:
        self.vector = torch.as_tensor(self.vector).detach().float().reshape(-1).cpu()
        self.layer = int(self.layer)
        if self.basis is not None:
            self.basis = torch.as_tensor(self.basis).detach().float().cpu()

    @property
    def norm(self) -> float:
        return float(self.vector.norm())


def span_vector(basis: torch.Tensor, layer: int, *, source: str = "subspace",
                meta: dict[str, Any] | None = None) -> LayerVector:
    """A subspace for ``ablate`` conditions: ``basis`` (``[k, d]``) is orthonormalised (QR),
    and the vector is its first row.

    Example:
        >>> v = span_vector(torch.eye(4)[:2] * 3, layer=1)
        >>> v.basis.shape, round(v.norm, 6)
        (torch.Size([2, 4]), 1.0)
    """
    b = torch.as_tensor(basis).detach().double().reshape(-1, torch.as_tensor(basis).shape[-1])
    q, r = torch.linalg.qr(b.T)
    q = q * torch.sign(torch.diagonal(r))[None, :]  # the same orientation as the input rows
    return LayerVector(q.T[0], layer, source=source, meta=dict(meta or {}), basis=q.T.float())


def vectors_from_directions(directions: Mapping[str, Any]) -> dict[str, LayerVector]:
    """``{split: LayerVector}`` from :func:`directions.load_directions` output.

    Example::

        vectors = vectors_from_directions(load_directions(run / "directions"))
    """
    return {name: LayerVector(d.vector, d.layer, source="directions",
                              meta={"projection_gap": float(d.projection_gap)})
            for name, d in directions.items()}


def latent_sum_vector(decoder: torch.Tensor, latents: Sequence[int], layer: int, *,
                      source: str = "sae") -> LayerVector:
    """The SAE steering vector of METHOD.md: sum of the selected decoder rows ``W_dec[latents]``
    (``decoder`` is ``[n_latents, d_model]``), added at ``resid_pre`` of ``layer``.

    Args:
        decoder: the SAE's ``W_dec``.
        latents: latent indices to sum.
        layer: the ``resid_pre`` layer the SAE reads (its hook layer).
        source: recorded on the vector.

    Example::

        vectors["sae_core"] = latent_sum_vector(sae.W_dec, [12, 40], layer=sae.hook_layer)
    """
    idx = torch.as_tensor(list(latents), dtype=torch.long)
    if idx.numel() == 0:
        raise UserError("an SAE steering vector needs at least one latent")
    return LayerVector(decoder.detach().float()[idx].sum(0), layer, source=source,
                       meta={"latents": [int(i) for i in idx]})


def resolved_layer(condition: Condition, vectors: Mapping[str, LayerVector]) -> int | None:
    """The ``resid_pre`` layer an additive condition acts at; None for the others."""
    if not condition.additive:
        return None
    return condition.layer if condition.layer is not None else vectors[condition.name].layer


def check_conditions(conditions: Sequence[Condition], vectors: Mapping[str, LayerVector],
                     model=None) -> None:
    """Every named vector exists, ablation vectors are unit, layers exist in ``model``."""
    missing = sorted({c.name for c in conditions if c.kind != "baseline" and c.name not in vectors})
    if missing:
        raise UserError(f"unknown direction(s) {', '.join(missing)}; available: "
                        f"{', '.join(vectors) or 'none'}")
    dims = {v.vector.numel() for v in vectors.values()}
    if len(dims) > 1:
        raise UserError(f"steering vectors have different sizes {sorted(dims)}")
    for c in conditions:
        if c.kind == "edit" and vectors[c.name].edit is None:
            raise UserError(f"condition {c.id} names {c.name!r}, which has no edit")
        if c.kind == "ablate" and abs(vectors[c.name].norm - 1.0) > 1e-3:
            raise UserError(f"ablation needs a unit vector; {c.name!r} has norm "
                            f"{vectors[c.name].norm:.4g}")
        basis = vectors[c.name].basis if c.kind == "ablate" else None
        if basis is not None and (basis.shape[-1] != vectors[c.name].vector.numel() or (
                basis @ basis.T - torch.eye(basis.shape[0])).abs().max() > 1e-3):
            raise UserError(f"the subspace {c.name!r} needs orthonormal basis rows of the "
                            "vector's size")
    if model is not None:
        d_model = int(model.config.hidden_size)
        if dims and dims != {d_model}:
            raise UserError(f"steering vectors have {dims.pop()} dimensions but the model has "
                            f"{d_model}")
        for c in conditions:
            if c.additive or c.kind == "edit":
                layer = resolved_layer(c, vectors) if c.additive else vectors[c.name].layer
                if not 0 <= layer < hooks.n_layers(model):
                    raise UserError(f"layer {layer} of condition {c.id} is out of range: the model "
                                    f"has layers 0..{hooks.n_layers(model) - 1}")
