"""dictionary_learning checkpoints: a folder with ``ae.pt`` (a state dict) and ``config.json``.

``config.json`` is ``{"trainer": {"dict_class", "activation_dim", "dict_size", "k",
"layer", "lm_name", "submodule_name", ...}, "buffer": {"io", ...}}``, e.g.
``andyrdt/saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1``. State-dict keys:
``AutoEncoder``: ``encoder.weight`` [n, d], ``encoder.bias`` [n], ``decoder.weight``
[d, n], ``bias`` [d]; ``AutoEncoderTopK`` / ``BatchTopKSAE``: ``encoder.weight``,
``encoder.bias``, ``decoder.weight``, ``b_dec``, ``k`` and a scalar ``threshold``;
``JumpReluAutoEncoder``: ``W_enc`` [d, n], ``b_enc``, ``W_dec`` [n, d], ``b_dec``,
``threshold`` [n]; ``MatryoshkaBatchTopKSAE``: the same plus ``k``, scalar
``threshold`` and ``group_sizes``. BatchTopK-style SAEs are used at inference with their
learned global threshold (``relu(pre) * (relu(pre) > threshold)``), which is a JumpReLU
with that threshold for every latent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ...artifacts import read_json
from ...errors import UserError
from ..models import SAE, SAEInfo, dtype_name, parse_dtype
from .hub import clamp_threshold, first_line, hub_download, looks_like_hub_path

DL_WEIGHTS = "ae.pt"
DL_CONFIG = "config.json"
# andyrdt's Llama-3.1-8B-Instruct BatchTopK SAEs (trainer_1 of each layer) on Neuronpedia.
_ANDYRDT_LLAMA_REPO = "saes-llama-3.1-8b-instruct"


_DL_FOLDER = re.compile(r"^resid_(post|pre)_layer_(\d+)$")
_DL_SUPPORTED = (
    "AutoEncoder",
    "AutoEncoderTopK",
    "BatchTopKSAE",
    "MatryoshkaBatchTopKSAE",
    "JumpReluAutoEncoder",
)


def _dl_infer_class(sd: dict[str, torch.Tensor], source: str) -> str:
    if "encoder.weight" in sd and "bias" in sd:
        return "AutoEncoder"
    if "W_enc" in sd and "group_sizes" in sd:
        return "MatryoshkaBatchTopKSAE"
    if "W_enc" in sd and "threshold" in sd and sd["threshold"].ndim == 1 and "k" not in sd:
        return "JumpReluAutoEncoder"
    if "encoder.weight" in sd and "k" in sd:
        raise UserError(
            f"{source}: ae.pt alone does not say whether it is an AutoEncoderTopK or a "
            f"BatchTopKSAE; put the {DL_CONFIG} that came with it beside it"
        )
    if "decoder_bias" in sd or "gate_bias" in sd:
        return "GatedAutoEncoder"
    raise UserError(
        f"{source} is not a dictionary_learning checkpoint refusal-atlas recognises "
        f"(keys: {', '.join(sorted(sd)[:8])})"
    )


def _dl_hook_layer(
    trainer: dict[str, Any], buffer: dict[str, Any], folder: Path, source: str
) -> tuple[int | None, str | None, int | None]:
    """(hook_layer, hook name as the source gives it, source layer number)."""
    candidates: list[tuple[int, str, int]] = []
    sub = trainer.get("submodule_name")
    if isinstance(sub, str):
        m = _DL_FOLDER.match(sub)
        if m:
            n = int(m.group(2))
            candidates.append((n + 1 if m.group(1) == "post" else n, sub, n))
    if isinstance(trainer.get("layer"), int) and not candidates:
        n = int(trainer["layer"])
        io = buffer.get("io", "out")
        if io in ("out", "in"):
            name = f"resid_{'post' if io == 'out' else 'pre'}_layer_{n}"
            candidates.append((n + 1 if io == "out" else n, name, n))
    for part in reversed(folder.resolve().parts):
        m = _DL_FOLDER.match(part)
        if m:
            n = int(m.group(2))
            candidates.append((n + 1 if m.group(1) == "post" else n, part, n))
            break
    if not candidates:
        return None, sub if isinstance(sub, str) else None, None
    layers = {c[0] for c in candidates}
    if len(layers) > 1:
        described = ", ".join(f"{c[1]} (resid_pre of layer {c[0]})" for c in candidates)
        raise UserError(f"{source}: its config and folder name disagree about the layer: {described}")
    return candidates[0]


def load_dictionary_learning(
    path: str | Path,
    *,
    hook_layer: int | None = None,
    model_name: str | None = None,
    neuronpedia_id: str | None = None,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> SAE:
    """Load a dictionary_learning checkpoint (folder with ``ae.pt`` + ``config.json``).

    ``path`` may also be the ``ae.pt`` file itself, or a hub path
    ``OWNER/REPO/FOLDER...`` (e.g. ``andyrdt/saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1``).
    The layer comes from ``trainer.submodule_name`` (``resid_post_layer_L``), or
    ``trainer.layer`` with ``buffer.io`` (``out`` = output of block L), or a
    ``resid_post_layer_L`` folder in the path; either way ``hook_layer = L + 1``.
    ``hook_layer`` (our convention) is only needed when none of these says; passing one
    that disagrees is an error.
    """
    spec = str(path).strip().removeprefix("dictionary-learning:")
    local = Path(spec).expanduser()
    source = spec
    if local.is_file():
        weights, folder = local, local.parent
    elif local.is_dir():
        weights, folder = local / DL_WEIGHTS, local
        if not weights.is_file():
            raise UserError(f"{local} is not a dictionary_learning folder: it has no {DL_WEIGHTS}")
    elif looks_like_hub_path(spec):
        parts = [p for p in spec.strip("/").split("/") if p]
        if parts[-1] in (DL_WEIGHTS, DL_CONFIG):
            parts = parts[:-1]
        if len(parts) < 3:
            raise UserError(f"{spec!r} is not a hub path of the form OWNER/REPO/FOLDER")
        repo_id, sub = "/".join(parts[:2]), "/".join(parts[2:])
        hub_download(repo_id, f"{sub}/{DL_CONFIG}")
        weights = hub_download(repo_id, f"{sub}/{DL_WEIGHTS}")
        folder = weights.parent
        source = f"{repo_id}/{sub}"
    else:
        raise UserError(f"dictionary_learning SAE not found: {spec}")

    config: dict[str, Any] = {}
    if (folder / DL_CONFIG).is_file():
        loaded = read_json(folder / DL_CONFIG)
        if not isinstance(loaded, dict):
            raise UserError(f"{folder / DL_CONFIG} is not a JSON object")
        config = loaded
    trainer = config.get("trainer") if isinstance(config.get("trainer"), dict) else {}
    buffer = config.get("buffer") if isinstance(config.get("buffer"), dict) else {}

    try:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"cannot read {weights} as a PyTorch state dict ({type(exc).__name__}: "
            f"{first_line(exc)})"
        ) from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise UserError(f"{weights} does not hold a state dict")
    sd = {
        str(k).removeprefix("_orig_mod."): v
        for k, v in sd.items()
        if isinstance(v, torch.Tensor)
    }

    dict_class = trainer.get("dict_class") or _dl_infer_class(sd, source)
    if dict_class not in _DL_SUPPORTED:
        raise UserError(
            f"{source}: dictionary_learning class {dict_class!r} is not supported "
            f"(refusal-atlas reads {', '.join(_DL_SUPPORTED)})"
        )

    def need(*keys: str) -> list[torch.Tensor]:
        missing = [k for k in keys if k not in sd]
        if missing:
            raise UserError(f"{source}: {dict_class} checkpoint lacks {', '.join(missing)}")
        return [sd[k] for k in keys]

    k: int | None = None
    train_k: int | None = None
    apply_b_dec = True
    if "encoder.weight" in sd:
        enc_w, enc_b, dec_w = need("encoder.weight", "encoder.bias", "decoder.weight")
        if enc_w.ndim != 2 or dec_w.ndim != 2:
            raise UserError(f"{source}: encoder/decoder weights must be 2-D matrices")
        W_enc, b_enc, W_dec = enc_w.T, enc_b, dec_w.T
    else:
        W_enc, b_enc, W_dec = need("W_enc", "b_enc", "W_dec")
    if dict_class == "AutoEncoder":
        (b_dec,) = need("bias")
    else:
        (b_dec,) = need("b_dec")
    if W_enc.ndim != 2:
        raise UserError(f"{source}: the encoder weight must be 2-D, got shape {list(W_enc.shape)}")
    d_in, d_sae = (int(s) for s in W_enc.shape)
    for key, expected in (("activation_dim", d_in), ("dict_size", d_sae)):
        if isinstance(trainer.get(key), int) and trainer[key] != expected:
            raise UserError(
                f"{source}: config says {key}={trainer[key]}, but the weights have {expected}"
            )

    tensors: dict[str, torch.Tensor] = {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}
    if dict_class == "AutoEncoder":
        architecture = "relu"
    elif dict_class == "AutoEncoderTopK":
        architecture = "topk"
        k_value = sd.get("k", trainer.get("k"))
        if k_value is None:
            raise UserError(f"{source}: an AutoEncoderTopK checkpoint must give k")
        k = int(k_value.item() if isinstance(k_value, torch.Tensor) else k_value)
    elif dict_class in ("BatchTopKSAE", "MatryoshkaBatchTopKSAE"):
        architecture = "jumprelu"
        (thr,) = need("threshold")
        if thr.numel() != 1:
            raise UserError(f"{source}: a {dict_class} threshold must be a scalar")
        tensors["threshold"] = torch.full((d_sae,), max(float(thr.item()), 0.0))
        k_value = sd.get("k", trainer.get("k"))
        if k_value is not None:
            train_k = int(k_value.item() if isinstance(k_value, torch.Tensor) else k_value)
    else:  # JumpReluAutoEncoder
        architecture = "jumprelu"
        apply_b_dec = False
        (thr,) = need("threshold")
        tensors["threshold"] = clamp_threshold(thr)

    found_layer, hook_name, source_layer = _dl_hook_layer(trainer, buffer, folder, source)
    if hook_layer is not None and found_layer is not None and hook_layer != found_layer:
        raise UserError(
            f"{source} reads {hook_name} (resid_pre of layer {found_layer}), but "
            f"hook_layer={hook_layer} was passed"
        )
    final_layer = found_layer if found_layer is not None else hook_layer
    if final_layer is None:
        raise UserError(
            f"cannot tell which layer {source} reads; pass hook_layer=L (resid_pre of block L)"
        )

    lm_name = trainer.get("lm_name")
    if neuronpedia_id is None and _ANDYRDT_LLAMA_REPO in str(folder.resolve()) + source \
            and folder.name == "trainer_1" and source_layer is not None \
            and hook_name and hook_name.startswith("resid_post"):
        neuronpedia_id = f"llama3.1-8b-it/{source_layer}-resid-post-aa"

    extras: dict[str, Any] = {"dict_class": dict_class}
    if dict_class in ("BatchTopKSAE", "MatryoshkaBatchTopKSAE"):
        extras["global_threshold"] = float(tensors["threshold"][0])
        if train_k is not None:
            extras["train_k"] = train_k
    if trainer:
        extras["trainer"] = {
            key: value for key, value in trainer.items()
            if isinstance(value, (str, int, float, bool, type(None), list))
        }

    info = SAEInfo(
        d_in=d_in,
        d_sae=d_sae,
        architecture=architecture,
        hook_layer=final_layer,
        k=k,
        apply_b_dec_to_input=apply_b_dec,
        hook_name=hook_name,
        model_name=model_name or (lm_name.split("/")[-1] if isinstance(lm_name, str) else None),
        source=source,
        source_format="dictionary_learning",
        dtype=dtype_name(parse_dtype(dtype)),
        neuronpedia_id=neuronpedia_id,
        extras=extras,
    )
    return SAE.from_tensors(info, tensors, device=device)

