"""Abliteration: project directions out of every weight that writes to the residual stream.

For a unit direction ``d`` (or the orthonormal basis ``Q`` of several), every matrix whose
output is added to the residual stream becomes ``W <- (I - Q^T Q) W``: the token
embeddings (row by row), each block's attention output projection ``o_proj`` and MLP
down projection ``down_proj``, and their biases where present. The residual stream then
never has a component along ``d``, which is exactly what hook-based ablation
(:func:`refusal_atlas.hooks.ablate_direction`: project at every block input and every
attention / MLP output) computes.

That equivalence needs the projections to be the last thing before the residual add.
Gemma-2/3 and OLMo-2 normalise each sub-layer's output after the projection
(``post_attention_layernorm`` / ``post_feedforward_layernorm``): an RMSNorm's gain
rescales each coordinate, so a projected ``W`` does not give a projected output, and
those architectures are refused. A tied LM head (Qwen2.5-0.5B) is untied first, so the
output logits still read the original embeddings, as under hook ablation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..artifacts import write_json
from ..errors import UserError
from ..hooks import decoder_layers

SUPPORTED_TYPES = ("llama", "qwen2", "qwen3", "mistral")
"""``config.model_type`` values whose blocks add ``o_proj`` / ``down_proj`` outputs
straight to the residual stream."""
RECORD_FILE = "abliteration.json"


def orthonormal_basis(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The orthonormalised span of ``vectors``: ``[k, d]`` float32 with orthonormal rows.

    Args:
        vectors: one or more ``[d]`` directions (any norm).

    Example:
        >>> q = orthonormal_basis([torch.tensor([1., 0, 0]), torch.tensor([1., 1, 0])])
        >>> torch.allclose(q @ q.T, torch.eye(2))
        True
    """
    if not vectors:
        raise UserError("abliteration needs at least one direction")
    widths = {int(v.numel()) for v in vectors}
    if len(widths) != 1:
        raise UserError(f"directions of different sizes {sorted(widths)} cannot share a span")
    stacked = torch.stack([v.detach().double().cpu().reshape(-1) for v in vectors])
    q, r = torch.linalg.qr(stacked.T)
    diag = r.diagonal().abs()
    if (diag <= 1e-6 * max(float(diag.max()), 1e-12)).any():
        raise UserError("the directions are linearly dependent (one lies in the span of the "
                        "others); drop it")
    return q.T.float().contiguous()


def check_abliteration_support(model: nn.Module) -> None:
    """One line (UserError) unless weight orthogonalisation equals hook ablation on ``model``.

    Example:
        >>> check_abliteration_support(lm.model)  # doctest: +SKIP
    """
    model_type = str(getattr(model.config, "model_type", type(model).__name__))
    blocks = decoder_layers(model)
    if any(hasattr(b, "post_feedforward_layernorm") for b in blocks):
        raise UserError(f"abliteration does not support {model_type}: a norm sits between each "
                        "attention/MLP projection and the residual add, so projecting the weights "
                        "is not the same as ablating the direction (steer or ablate with hooks)")
    if model_type not in SUPPORTED_TYPES:
        raise UserError(f"abliteration does not support model type {model_type!r}; it supports "
                        f"{', '.join(SUPPORTED_TYPES)}")
    for index, block in enumerate(blocks):
        for attr in ("self_attn.o_proj", "mlp.down_proj"):
            if not isinstance(_module(block, attr), nn.Linear):
                raise UserError(f"abliteration: block {index} of this {model_type} model has no "
                                f"linear {attr}")
    if not isinstance(model.get_input_embeddings(), nn.Embedding):
        raise UserError(f"abliteration: this {model_type} model has no embedding matrix")


def _module(root: nn.Module, path: str) -> nn.Module | None:
    for attr in path.split("."):
        root = getattr(root, attr, None)
        if root is None:
            return None
    return root


def _untie_lm_head(model: nn.Module) -> bool:
    """Give the LM head its own copy of tied embeddings; True when it was tied."""
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or head.weight.data_ptr() != embed.weight.data_ptr():
        return False
    head.weight = nn.Parameter(embed.weight.detach().clone(), requires_grad=False)
    for config in (model.config, getattr(model.config, "get_text_config", lambda: None)()):
        if config is not None and hasattr(config, "tie_word_embeddings"):
            config.tie_word_embeddings = False
    return True


@torch.no_grad()
def _project_rows(weight: torch.Tensor, q: torch.Tensor) -> None:
    """rows r <- r - (r Q^T) Q (embeddings: one residual vector per row)."""
    w = weight.float()
    weight.copy_((w - (w @ q.T) @ q).to(weight.dtype))


@torch.no_grad()
def _project_outputs(weight: torch.Tensor, q: torch.Tensor) -> None:
    """W <- W - Q^T (Q W) for a Linear weight ``[d_model, d_in]`` (and a ``[d_model]`` bias)."""
    w = weight.float()
    weight.copy_((w - q.T @ (q @ w)).to(weight.dtype))


@torch.no_grad()
def abliterate_weights(model: nn.Module, basis: torch.Tensor) -> dict:
    """Project the span of ``basis`` out of ``model``'s residual-stream writers, in place.

    Args:
        model: a Hugging Face causal LM of a supported type (see :data:`SUPPORTED_TYPES`).
        basis: ``[k, d_model]`` orthonormal rows (:func:`orthonormal_basis`).

    Returns:
        What was changed: ``{"matrices": n, "biases": n, "untied_lm_head": bool}``.

    Example:
        >>> q = orthonormal_basis([d.vector])              # doctest: +SKIP
        >>> abliterate_weights(lm.model, q)                # doctest: +SKIP
        {'matrices': 49, 'biases': 0, 'untied_lm_head': True}
    """
    check_abliteration_support(model)
    embed = model.get_input_embeddings()
    if basis.dim() != 2 or basis.shape[1] != embed.weight.shape[1]:
        raise UserError(f"directions of size {basis.shape[-1]} do not fit this model "
                        f"(d_model {embed.weight.shape[1]})")
    q = basis.to(device=embed.weight.device, dtype=torch.float32)
    untied = _untie_lm_head(model)
    _project_rows(embed.weight, q)
    matrices, biases = 1, 0
    for block in decoder_layers(model):
        for attr in ("self_attn.o_proj", "mlp.down_proj"):
            linear = _module(block, attr)
            _project_outputs(linear.weight, q)
            matrices += 1
            if linear.bias is not None:
                _project_outputs(linear.bias, q)
                biases += 1
    return {"matrices": matrices, "biases": biases, "untied_lm_head": untied}


def save_abliterated(lm, out_dir: str | Path, record: dict) -> Path:
    """Save an abliterated :class:`~refusal_atlas.models.LoadedModel` as a Hugging Face
    safetensors folder with its tokenizer and chat template, and ``abliteration.json``.

    Args:
        lm: the model after :func:`abliterate_weights`.
        out_dir: a new (or empty) folder.
        record: what :func:`~refusal_atlas.export.evaluate.abliterate_model` measured.

    Example:
        >>> save_abliterated(lm, "qwen-abliterated", record)  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"--out {out_dir} exists and is not an empty folder; give a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(str(out_dir), safe_serialization=True)
    lm.tokenizer.save_pretrained(str(out_dir))
    write_json(out_dir / RECORD_FILE, record)
    return out_dir
