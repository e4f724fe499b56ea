"""Read (and write) SAEs in the formats refusal-atlas meets, as :class:`~.models.SAE`.

Formats:

* **Gemma Scope** ``params.npz`` (``google/gemma-scope-*``): ``W_enc`` [d, n], ``W_dec``
  [n, d], ``b_enc`` [n], ``b_dec`` [d], ``threshold`` [n]; JumpReLU, ``b_dec`` not
  subtracted from the input. "layer L" is the output of block L, i.e. ``hook_layer = L+1``.
* **SAELens** folders: ``cfg.json`` + ``sae_weights.safetensors`` (tensors ``W_enc``
  [d_in, d_sae], ``b_enc``, ``W_dec`` [d_sae, d_in], ``b_dec`` and, for ``jumprelu``,
  ``threshold`` [d_sae] -- or ``log_threshold`` in old files). cfg.json (SAELens >= 6)
  holds ``architecture`` (``standard`` | ``jumprelu`` | ``topk`` ...), ``d_in``,
  ``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``, ``normalize_activations``,
  ``reshape_activations``, ``k`` and ``rescale_acts_by_decoder_norm`` (topk) and a
  ``metadata`` object (``model_name``, ``hook_name``, ``neuronpedia_id``,
  ``sae_lens_version``, ...). Pre-6.0 files keep those keys at top level
  (``hook_name``/``hook_point``, ``activation_fn_str``, ``activation_fn_kwargs.k``).
  :func:`save_saelens_dir` writes the 6.x layout, which ``sae_lens.SAE.load_from_disk``
  reads.
* **dictionary_learning** checkpoints: a folder with ``ae.pt`` (a state dict) and
  ``config.json`` (``{"trainer": {"dict_class", "activation_dim", "dict_size", "k",
  "layer", "lm_name", "submodule_name", ...}, "buffer": {"io", ...}}``), e.g.
  ``andyrdt/saes-llama-3.1-8b-instruct/resid_post_layer_19/trainer_1``. State-dict keys:
  ``AutoEncoder``: ``encoder.weight`` [n, d], ``encoder.bias`` [n], ``decoder.weight``
  [d, n], ``bias`` [d]; ``AutoEncoderTopK`` / ``BatchTopKSAE``: ``encoder.weight``,
  ``encoder.bias``, ``decoder.weight``, ``b_dec``, ``k`` and a scalar ``threshold``;
  ``JumpReluAutoEncoder``: ``W_enc`` [d, n], ``b_enc``, ``W_dec`` [n, d], ``b_dec``,
  ``threshold`` [n]; ``MatryoshkaBatchTopKSAE``: the same plus ``k``, scalar
  ``threshold`` and ``group_sizes``. BatchTopK-style SAEs are used at inference with their
  learned global threshold (``relu(pre) * (relu(pre) > threshold)``), which is a JumpReLU
  with that threshold for every latent.

Every user-caused problem (missing file, wrong shapes, unknown format, hub unreachable)
raises :class:`~refusal_atlas.errors.UserError` with one sentence.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts import read_json, read_tensors, write_json, write_tensors
from ..errors import UserError
from .models import (
    SAE,
    SAEInfo,
    dtype_name,
    hook_layer_from_name,
    parse_dtype,
)

SAELENS_CFG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"
SAELENS_SCALER = "activation_scaler.json"
# The cfg.json layout version save_saelens_dir writes (SAELens >= 6 reads it as is).
SAELENS_FORMAT_VERSION = "6.0.0"

DL_WEIGHTS = "ae.pt"
DL_CONFIG = "config.json"
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
# andyrdt's Llama-3.1-8B-Instruct BatchTopK SAEs (trainer_1 of each layer) on Neuronpedia.
_ANDYRDT_LLAMA_REPO = "saes-llama-3.1-8b-instruct"


# ---------------------------------------------------------------------------- hub
def hub_download(repo_id: str, filename: str) -> Path:
    """``huggingface_hub.hf_hub_download`` with every failure turned into a UserError."""
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover - a hard dependency of transformers
        raise UserError("downloading SAEs needs huggingface_hub (pip install huggingface_hub)") \
            from None
    where = f"{filename} from the Hugging Face hub repo {repo_id}"
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id=repo_id, filename=filename))
    except hf_errors.LocalEntryNotFoundError:  # offline (a subclass of EntryNotFoundError)
        raise UserError(
            f"could not download {where}: the hub is unreachable and the file is not in the "
            "local cache (check the network, or pass a local path)"
        ) from None
    except hf_errors.GatedRepoError:
        raise UserError(
            f"access to {repo_id} was denied: accept its licence at "
            f"https://huggingface.co/{repo_id} and log in (hf auth login or HF_TOKEN)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise UserError(
            f"hub repo {repo_id} does not exist or is private (log in if it is yours)"
        ) from None
    except (hf_errors.EntryNotFoundError, hf_errors.RemoteEntryNotFoundError):
        raise UserError(f"{repo_id} has no file {filename}; check the SAE path") from None
    except hf_errors.HFValidationError as exc:
        raise UserError(f"{repo_id!r} is not a valid hub repo id ({exc})") from None
    except Exception as exc:  # noqa: BLE001  # network errors (httpx/requests), HTTP 401/403/5xx ...
        raise UserError(
            f"could not download {where} ({type(exc).__name__}: {_first_line(exc)}); "
            "check the network and your hub login, or pass a local path"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def _looks_like_hub_path(spec: str, min_parts: int = 3) -> bool:
    if not spec or spec.startswith(("/", ".", "~")) or "\\" in spec or ":" in spec:
        return False
    parts = [p for p in spec.strip("/").split("/") if p]
    return len(parts) >= min_parts


# ---------------------------------------------------------------------------- helpers
def _tensor(value: Any, name: str, source: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise UserError(f"{source}: entry {name!r} is not a tensor")


def _clamp_threshold(threshold: torch.Tensor) -> torch.Tensor:
    """Sources apply ReLU as well as the jump; with threshold >= 0 our formula is identical."""
    return threshold.clamp_min(0)


# ---------------------------------------------------------------------------- Gemma Scope
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
    elif _looks_like_hub_path(spec):
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
        raise UserError(f"cannot read {file} as a .npz file ({_first_line(exc)})") from None
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
    tensors = {k: _tensor(arrays[k], k, source) for k in needed}
    tensors["threshold"] = _clamp_threshold(tensors["threshold"])
    return SAE.from_tensors(info, tensors, device=device)


# ---------------------------------------------------------------------------- SAELens
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
            f"cannot read {folder / SAELENS_WEIGHTS} as safetensors ({_first_line(exc)})"
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
        tensors["threshold"] = _clamp_threshold(tensors["threshold"])

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
        raise UserError(f"SAELens could not load {release}/{sae_id}: {_first_line(exc)}") from None
    # Older SAELens versions return (sae, cfg_dict, sparsity).
    sl_sae = loaded[0] if isinstance(loaded, tuple) else loaded
    cfg = sl_sae.cfg.to_dict()
    tensors = {k: v.detach().cpu() for k, v in sl_sae.state_dict().items()}
    return _sae_from_saelens(
        cfg, tensors, source=source, dtype=dtype, device=device, source_format="saelens"
    )


# ---------------------------------------------------------------------------- dictionary_learning
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
    elif _looks_like_hub_path(spec):
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
            f"{_first_line(exc)})"
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
        tensors["threshold"] = _clamp_threshold(thr)

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


# ---------------------------------------------------------------------------- dispatch
def load_sae(spec: str | Path, **kw: Any) -> SAE:
    """Load an SAE from any supported source, chosen from ``spec``:

    * ``saelens:RELEASE/SAE_ID`` -> :func:`load_saelens_pretrained` (split at the first ``/``)
    * ``gemma-scope:PATH`` or a ``.npz`` file / folder with ``params.npz`` or a hub path
      of a ``gemma-scope`` repo -> :func:`load_gemma_scope`
    * a folder with ``cfg.json`` (or that file) -> :func:`load_saelens_dir`
    * ``dictionary-learning:PATH``, a folder with ``ae.pt`` (or that file), or a hub path
      with ``resid_post_layer_L`` / ``trainer_N`` -> :func:`load_dictionary_learning`

    Keyword arguments go to the chosen loader (all take ``dtype`` and ``device``).
    """
    text = str(spec).strip()
    if not text:
        raise UserError("no SAE given")
    if text.startswith("saelens:"):
        rest = text.removeprefix("saelens:").strip("/")
        if "/" not in rest:
            raise UserError(f"{text!r}: expected saelens:RELEASE/SAE_ID")
        release, sae_id = rest.split("/", 1)
        return load_saelens_pretrained(release, sae_id, **kw)
    if text.startswith("gemma-scope:"):
        return load_gemma_scope(text, **kw)
    if text.startswith("dictionary-learning:"):
        return load_dictionary_learning(text, **kw)

    p = Path(text).expanduser()
    if p.is_file():
        if p.suffix == ".npz":
            return load_gemma_scope(p, **kw)
        if p.name in (SAELENS_CFG, SAELENS_WEIGHTS):
            return load_saelens_dir(p.parent, **kw)
        if p.suffix in (".pt", ".pth"):
            return load_dictionary_learning(p, **kw)
        raise UserError(
            f"unknown SAE file format: {p} (expected params.npz, a SAELens folder or ae.pt)"
        )
    if p.is_dir():
        if (p / SAELENS_CFG).is_file():
            return load_saelens_dir(p, **kw)
        if (p / DL_WEIGHTS).is_file():
            return load_dictionary_learning(p, **kw)
        if (p / GEMMA_SCOPE_FILE).is_file():
            return load_gemma_scope(p, **kw)
        raise UserError(
            f"{p} holds no SAE refusal-atlas recognises ({SAELENS_CFG}, {DL_WEIGHTS} or "
            f"{GEMMA_SCOPE_FILE})"
        )
    if _looks_like_hub_path(text):
        repo_name = text.strip("/").split("/")[1]
        if "gemma-scope" in repo_name:
            return load_gemma_scope(text, **kw)
        if re.search(r"(^|/)(resid_(post|pre)_layer_\d+|trainer_\d+)(/|$)", text):
            return load_dictionary_learning(text, **kw)
        raise UserError(
            f"{text!r} is not a local file and not a hub path refusal-atlas knows how to read; "
            "prefix it with gemma-scope:, dictionary-learning: or saelens:"
        )
    raise UserError(f"SAE not found: {text} (no such file or folder)")
