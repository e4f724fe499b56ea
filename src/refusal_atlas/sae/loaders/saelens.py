"""SAELens folders (``cfg.json`` + ``sae_weights.safetensors``) and SAELens pretrained SAEs.

Tensors ``W_enc`` [d_in, d_sae], ``b_enc``, ``W_dec`` [d_sae, d_in], ``b_dec`` and, for
``jumprelu``, ``threshold`` [d_sae] -- or ``log_threshold`` in old files. cfg.json
(SAELens >= 6) holds ``architecture`` (``standard`` | ``jumprelu`` | ``topk`` ...),
``d_in``, ``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``,
``normalize_activations``, ``reshape_activations``, ``k`` and
``rescale_acts_by_decoder_norm`` (topk) and a ``metadata`` object (``model_name``,
``hook_name``, ``neuronpedia_id``, ``sae_lens_version``, ...). Pre-6.0 files keep those
keys at top level (``hook_name``/``hook_point``, ``activation_fn_str``,
``activation_fn_kwargs.k``). :func:`save_saelens_dir` writes the 6.x layout, which
``sae_lens.SAE.load_from_disk`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...artifacts import read_json, read_tensors, write_json, write_tensors
from ...errors import UserError
from ..models import SAE, SAEInfo, dtype_name, hook_layer_from_name, parse_dtype
from .hub import clamp_threshold, first_line

SAELENS_CFG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"
SAELENS_SCALER = "activation_scaler.json"
# The cfg.json layout version save_saelens_dir writes (SAELens >= 6 reads it as is).
SAELENS_FORMAT_VERSION = "6.0.0"


_SAELENS_ARCH = {"standard": "relu", "jumprelu": "jumprelu", "topk": "topk"}
_OUR_ARCH_TO_SAELENS = {v: k for k, v in _SAELENS_ARCH.items()}


def _saelens_dir(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_file() and p.name in (SAELENS_CFG, SAELENS_WEIGHTS):
        p = p.parent
    if not p.exists():
        raise UserError(f"SAELens SAE folder not found: {p}")
    if not p.is_dir():
        raise UserError(f"{p} is not a SAELens SAE folder (expected a folder with {SAELENS_CFG})")
    for name in (SAELENS_CFG, SAELENS_WEIGHTS):
        if not (p / name).is_file():
            raise UserError(f"{p} is not a SAELens SAE folder: it has no {name}")
    return p


def load_saelens_dir(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> SAE:
    """Load a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``)."""
    folder = _saelens_dir(path)
    cfg = read_json(folder / SAELENS_CFG)
    if not isinstance(cfg, dict):
        raise UserError(f"{folder / SAELENS_CFG} is not a JSON object")
    try:
        tensors = read_tensors(folder / SAELENS_WEIGHTS)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"cannot read {folder / SAELENS_WEIGHTS} as safetensors ({first_line(exc)})"
        ) from None
    scale = None
    normalize = cfg.get("normalize_activations")
    if normalize == "expected_average_only_in" or normalize is True:
        scaler_file = folder / SAELENS_SCALER
        if scaler_file.is_file():
            scaler = read_json(scaler_file)
            scale = scaler.get("scaling_factor") if isinstance(scaler, dict) else None
    return _sae_from_saelens(
        cfg, tensors, source=str(folder), dtype=dtype, device=device, input_scale=scale
    )


def _sae_from_saelens(
    cfg: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    *,
    source: str,
    dtype: str | torch.dtype,
    device: str | torch.device,
    input_scale: float | None = None,
    source_format: str = "saelens",
) -> SAE:
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}

    def get(key: str, *alts: str) -> Any:
        for k in (key, *alts):
            if meta.get(k) is not None:
                return meta[k]
            if cfg.get(k) is not None:
                return cfg[k]
        return None

    arch_name = cfg.get("architecture") or "standard"
    activation_fn = cfg.get("activation_fn") or cfg.get("activation_fn_str")
    fn_kwargs = cfg.get("activation_fn_kwargs") or {}
    if arch_name == "standard" and activation_fn == "topk":
        arch_name = "topk"
    if arch_name not in _SAELENS_ARCH:
        raise UserError(
            f"{source}: SAELens architecture {arch_name!r} is not supported "
            f"(refusal-atlas reads {', '.join(_SAELENS_ARCH)})"
        )
    if arch_name == "standard" and activation_fn not in (None, "relu"):
        raise UserError(f"{source}: activation function {activation_fn!r} is not supported")
    architecture = _SAELENS_ARCH[arch_name]
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int):
            raise UserError(f"{source}: cfg.json has no integer {key!r}")
    k = cfg.get("k") if cfg.get("k") is not None else fn_kwargs.get("k")
    if architecture == "topk" and k is None:
        raise UserError(f"{source}: a topk SAE's cfg.json must give k")
    if (cfg.get("reshape_activations") or "none") != "none":
        raise UserError(
            f"{source} reads attention head outputs (reshape_activations="
            f"{cfg.get('reshape_activations')!r}); refusal-atlas needs residual-stream SAEs"
        )
    if get("hook_head_index") is not None:
        raise UserError(f"{source} reads a single attention head; refusal-atlas needs residual-stream SAEs")

    tensors = dict(tensors)
    if "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = torch.exp(tensors.pop("log_threshold"))
    for key in ("scaling_factor", "finetuning_scaling_factor"):
        if key in tensors:
            factor = tensors.pop(key)
            if not torch.allclose(factor.float(), torch.ones_like(factor, dtype=torch.float32)):
                raise UserError(f"{source}: SAEs with a fine-tuning scaling factor are not supported")
    if architecture == "jumprelu" and "threshold" in tensors:
        tensors["threshold"] = clamp_threshold(tensors["threshold"])

    normalize = cfg.get("normalize_activations")
    if normalize in (None, False, "none"):
        scale = None
    elif normalize in ("expected_average_only_in", True):
        if input_scale is None:
            raise UserError(
                f"{source} expects inputs scaled by a constant (normalize_activations="
                f"'expected_average_only_in') but no {SAELENS_SCALER} with its scaling_factor "
                "was found; load it with load_saelens_pretrained or add that file"
            )
        scale = float(input_scale)
    else:
        raise UserError(
            f"{source}: normalize_activations={normalize!r} (a per-input normalisation) is not "
            "supported"
        )

    hook_name = get("hook_name", "hook_point")
    ours = meta.get("refusal_atlas") if isinstance(meta.get("refusal_atlas"), dict) else {}
    hook_layer = ours.get("hook_layer") if "hook_layer" in ours else (
        hook_layer_from_name(hook_name) if hook_name else None
    )
    info = SAEInfo(
        d_in=int(cfg["d_in"]),
        d_sae=int(cfg["d_sae"]),
        architecture=architecture,
        hook_layer=hook_layer,
        k=int(k) if architecture == "topk" else None,
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
        hook_name=ours.get("hook_name", hook_name),
        model_name=ours.get("model_name", get("model_name")),
        source=source,
        source_format=ours.get("source_format", source_format),
        dtype=dtype_name(parse_dtype(dtype)),
        neuronpedia_id=ours.get("neuronpedia_id", get("neuronpedia_id")),
        extras=dict(ours.get("extras") or {}),
    )
    sae = SAE.from_tensors(info, tensors, device=device)
    if architecture == "topk" and cfg.get("rescale_acts_by_decoder_norm"):
        # SAELens: pre *= |W_dec rows|, f /= |W_dec rows| before decoding. Folding the
        # norms into the encoder gives the same top-k choice and the same reconstruction.
        with torch.no_grad():
            norms = sae.W_dec.norm(dim=-1).clamp_min(1e-12)
            sae.W_enc.mul_(norms)
            sae.b_enc.mul_(norms)
            sae.W_dec.div_(norms[:, None])
    if scale is not None:
        sae.fold_input_scale(scale)
    return sae


def save_saelens_dir(sae: SAE, path: str | Path) -> Path:
    """Write ``sae`` as a SAELens folder (cfg.json + sae_weights.safetensors).

    The layout is SAELens' 6.x inference format, so ``sae_lens.SAE.load_from_disk(path)``
    loads it; refusal-atlas' own metadata (hook_layer, source, extras) rides along in
    ``metadata.refusal_atlas`` so :func:`load_saelens_dir` restores the SAE exactly.
    """
    info = sae.info
    if info.architecture == "jumprelu" and sae.threshold is not None and \
            bool((sae.threshold < 0).any()):
        raise UserError(
            "this JumpReLU SAE has negative thresholds, which SAELens would apply differently "
            "(it also applies a ReLU); clamp them to 0 first"
        )
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"cannot write a SAELens folder at {folder}: it is a file")
    folder.mkdir(parents=True, exist_ok=True)

    hook_name = info.hook_name
    if info.hook_layer is not None and (
        hook_name is None or hook_layer_from_name(hook_name) != info.hook_layer
    ):
        hook_name = f"blocks.{info.hook_layer}.hook_resid_pre"
    ours = {
        "hook_layer": info.hook_layer,
        "hook_name": info.hook_name,
        "model_name": info.model_name,
        "source_format": info.source_format,
        "neuronpedia_id": info.neuronpedia_id,
        "extras": info.extras,
    }
    cfg: dict[str, Any] = {
        "architecture": _OUR_ARCH_TO_SAELENS[info.architecture],
        "d_in": info.d_in,
        "d_sae": info.d_sae,
        "dtype": dtype_name(sae.dtype),
        "device": "cpu",
        "apply_b_dec_to_input": bool(info.apply_b_dec_to_input),
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAELENS_FORMAT_VERSION,
            "sae_lens_training_version": None,
            "model_name": info.model_name,
            "hook_name": hook_name,
            "hook_head_index": None,
            "prepend_bos": True,
            "neuronpedia_id": info.neuronpedia_id,
            "refusal_atlas": ours,
        },
    }
    if info.architecture == "topk":
        cfg["k"] = info.k
        cfg["rescale_acts_by_decoder_norm"] = False
    tensors = {k: v.detach().cpu().contiguous() for k, v in sae.state_tensors().items()}
    write_tensors(folder / SAELENS_WEIGHTS, tensors)
    write_json(folder / SAELENS_CFG, cfg)
    return folder


def load_saelens_pretrained(
    release: str,
    sae_id: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> SAE:
    """Load ``sae_lens.SAE.from_pretrained(release, sae_id)`` and convert it.

    Needs the optional extra ``sae-lens`` (imported lazily). SAELens folds any
    normalisation constant into the weights itself.
    """
    try:
        # lazily: sae-lens is an optional extra (it pulls in transformer-lens)
        from sae_lens import SAE as SaeLensSAE  # type: ignore[import-not-found]
    except ImportError:
        raise UserError(
            "loading SAELens pretrained SAEs needs the sae-lens package: "
            "pip install sae-lens (or pip install 'refusal-atlas[saelens]')"
        ) from None
    source = f"saelens:{release}/{sae_id}"
    try:
        loaded = SaeLensSAE.from_pretrained(release, sae_id, device="cpu")
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"SAELens could not load {release}/{sae_id}: {first_line(exc)}") from None
    # Older SAELens versions return (sae, cfg_dict, sparsity).
    sl_sae = loaded[0] if isinstance(loaded, tuple) else loaded
    cfg = sl_sae.cfg.to_dict()
    tensors = {k: v.detach().cpu() for k, v in sl_sae.state_dict().items()}
    return _sae_from_saelens(
        cfg, tensors, source=source, dtype=dtype, device=device, source_format="saelens"
    )

