"""Gemma Scope ``params.npz`` SAEs (``google/gemma-scope-*``), local or from the hub.

``W_enc`` [d, n], ``W_dec`` [n, d], ``b_enc`` [n], ``b_dec`` [d], ``threshold`` [n];
JumpReLU, ``b_dec`` not subtracted from the input. "layer L" is the output of block L,
i.e. ``hook_layer = L+1``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import UserError
from ..models import SAE, SAEInfo, dtype_name, parse_dtype
from .hub import as_tensor, clamp_threshold, first_line, hub_download, looks_like_hub_path

GEMMA_SCOPE_FILE = "params.npz"

# Gemma 2 residual widths, to catch a params.npz paired with the wrong model name.
_GEMMA2_D_MODEL = {"gemma-2-2b": 2304, "gemma-2-9b": 3584, "gemma-2-27b": 4608}

# Neuronpedia hosts dashboards for the "canonical" Gemma Scope 9B-IT residual SAEs only;
# latent indices differ between the average_l0 variants, so only these get a URL.
# (source layer, width label) -> (average_l0 of the canonical SAE, Neuronpedia SAE id)
_GEMMA_SCOPE_9B_IT_NEURONPEDIA: dict[tuple[int, str], tuple[int, str]] = {
    (9, "16k"): (88, "gemma-2-9b-it/9-gemmascope-res-16k"),
    (20, "16k"): (91, "gemma-2-9b-it/20-gemmascope-res-16k"),
    (31, "16k"): (76, "gemma-2-9b-it/31-gemmascope-res-16k"),
    (9, "131k"): (121, "gemma-2-9b-it/9-gemmascope-res-131k"),
    (20, "131k"): (81, "gemma-2-9b-it/20-gemmascope-res-131k"),
    (31, "131k"): (109, "gemma-2-9b-it/31-gemmascope-res-131k"),
}

_GS_LAYER = re.compile(r"(?:^|/)layer_(\d+)(?:/|$)")
_GS_WIDTH = re.compile(r"(?:^|/)width_(\d+)([km])(?:/|$)")
_GS_L0 = re.compile(r"(?:^|/)average_l0_(\d+)(?:/|$)")
_GS_REPO = re.compile(r"gemma-scope-(2b|9b|27b)-(pt|it)-(res|mlp|att|transcoders)")


def _gemma_scope_model_name(text: str) -> str | None:
    m = _GS_REPO.search(text)
    if not m:
        return None
    size, kind = m.group(1), m.group(2)
    return f"gemma-2-{size}" + ("-it" if kind == "it" else "")


def load_gemma_scope(
    path_or_hub_path: str | Path,
    *,
    layer: int | None = None,
    model_name: str | None = None,
    neuronpedia_id: str | None = None,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> SAE:
    """Load a Gemma Scope JumpReLU SAE.

    Args:
        path_or_hub_path: a local ``params.npz`` (or the folder holding one), or a hub path
            ``google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14`` (optionally
            prefixed ``gemma-scope:`` and/or ending in ``/params.npz``): the repo id is the
            first two components, the file is the rest + ``/params.npz``.
        layer: Gemma Scope's own layer number (the ``layer_L`` of the path: the *output*
            of block L, so ``hook_layer = L + 1``). Needed only when the path does not say;
            a value that disagrees with the path is an error.
        model_name: defaults to the model named by the repo (``gemma-2-9b-it``).
        neuronpedia_id: overrides the built-in table (canonical 9B-IT residual SAEs).
    """
    spec = str(path_or_hub_path).strip()
    spec = spec.removeprefix("gemma-scope:")
    local = Path(spec).expanduser()
    repo_id: str | None = None
    if local.is_dir():
        local = local / GEMMA_SCOPE_FILE
        if not local.is_file():
            raise UserError(f"folder {local.parent} has no {GEMMA_SCOPE_FILE}")
    if local.is_file():
        file = local
        path_text = str(local)
        source = str(local)
    elif looks_like_hub_path(spec):
        parts = [p for p in spec.strip("/").split("/") if p]
        if parts[-1] == GEMMA_SCOPE_FILE:
            parts = parts[:-1]
        if len(parts) < 3:
            raise UserError(
                f"{spec!r} is not a Gemma Scope hub path; expected e.g. "
                "google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14"
            )
        repo_id = "/".join(parts[:2])
        folder = "/".join(parts[2:])
        file = hub_download(repo_id, f"{folder}/{GEMMA_SCOPE_FILE}")
        path_text = f"{repo_id}/{folder}"
        source = path_text
    else:
        raise UserError(f"Gemma Scope SAE not found: {spec} (no such file, and not a hub path)")

    try:
        with np.load(file) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read {file} as a .npz file ({first_line(exc)})") from None
    arrays = {("W_" + k[2:] if k.startswith("w_") else k): v for k, v in arrays.items()}
    needed = ["W_enc", "W_dec", "b_enc", "b_dec", "threshold"]
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise UserError(
            f"{source} is not a Gemma Scope params.npz: it lacks {', '.join(missing)} "
            f"(has {', '.join(sorted(arrays)) or 'nothing'})"
        )
    w_enc = arrays["W_enc"]
    if w_enc.ndim != 2:
        raise UserError(f"{source}: W_enc must be 2-D [d_in, d_sae], got shape {list(w_enc.shape)}")
    d_in, d_sae = (int(s) for s in w_enc.shape)

    m = _GS_LAYER.search(path_text)
    path_layer = int(m.group(1)) if m else None
    if layer is not None and path_layer is not None and int(layer) != path_layer:
        raise UserError(
            f"{source} is Gemma Scope layer {path_layer} (resid_pre of layer {path_layer + 1}), "
            f"but layer={layer} was passed"
        )
    gs_layer = path_layer if path_layer is not None else layer
    if gs_layer is None:
        raise UserError(
            f"cannot tell which layer {source} belongs to; pass layer=L (Gemma Scope's "
            "numbering, the L of layer_L)"
        )
    gs_layer = int(gs_layer)

    m = _GS_WIDTH.search(path_text)
    width_label = f"{m.group(1)}{m.group(2)}" if m else None
    if m:
        width = int(m.group(1)) * (1024 if m.group(2) == "k" else 1024 * 1024)
        if width != d_sae:
            raise UserError(
                f"{source} says width_{width_label} ({width} latents), but its W_enc has "
                f"{d_sae} latents"
            )
    m = _GS_L0.search(path_text)
    average_l0 = int(m.group(1)) if m else None

    name = model_name or _gemma_scope_model_name(path_text)
    if name:
        base = name.removesuffix("-it")
        expected_d = _GEMMA2_D_MODEL.get(base)
        if expected_d is not None and expected_d != d_in and "-res" in path_text:
            raise UserError(
                f"{source} has d_in={d_in}, but {name}'s residual stream has width {expected_d}"
            )

    kind_match = _GS_REPO.search(path_text)
    kind = kind_match.group(3) if kind_match else "res"
    if "embedding" in path_text:
        raise UserError(f"{source} is a Gemma Scope embedding SAE, which refusal-atlas does not support")
    if kind == "res":
        hook_layer: int | None = gs_layer + 1
        hook_name = f"blocks.{gs_layer}.hook_resid_post"
    else:
        hook_layer = None
        hook_name = f"blocks.{gs_layer}.hook_mlp_out" if kind == "mlp" else \
            f"blocks.{gs_layer}.attn.hook_z"

    if neuronpedia_id is None and repo_id == "google/gemma-scope-9b-it-res" and width_label:
        entry = _GEMMA_SCOPE_9B_IT_NEURONPEDIA.get((gs_layer, width_label))
        if entry is not None and entry[0] == average_l0:
            neuronpedia_id = entry[1]

    extras: dict[str, Any] = {"gemma_scope_layer": gs_layer}
    if width_label:
        extras["width"] = width_label
    if average_l0 is not None:
        extras["average_l0"] = average_l0
    if repo_id:
        extras["repo_id"] = repo_id

    info = SAEInfo(
        d_in=d_in,
        d_sae=d_sae,
        architecture="jumprelu",
        hook_layer=hook_layer,
        apply_b_dec_to_input=False,
        hook_name=hook_name,
        model_name=name,
        source=source,
        source_format="gemma_scope",
        dtype=dtype_name(parse_dtype(dtype)),
        neuronpedia_id=neuronpedia_id,
        extras=extras,
    )
    tensors = {k: as_tensor(arrays[k], k, source) for k in needed}
    tensors["threshold"] = clamp_threshold(tensors["threshold"])
    return SAE.from_tensors(info, tensors, device=device)

