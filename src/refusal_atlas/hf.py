"""Loading Hugging Face causal language models: the one loader every model user shares.

The chat model under study (:mod:`refusal_atlas.models`), the WildGuard judge and the
LLM style classifier's local backend all load a tokenizer and an ``AutoModelForCausalLM``
from a hub id or a folder, on a device and in a dtype. They do it here, so the choice of
device and dtype, the quiet weight loading and the one-line errors are the same for all.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DTYPE_NAMES",
    "HFModel",
    "canonical_dtype",
    "first_line",
    "load_causal_lm",
    "load_tokenizer",
    "resolve_device",
    "resolve_dtype",
]

#: Accepted dtype spellings -> the canonical torch name.
DTYPE_NAMES: dict[str, str] = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


class HFModel(NamedTuple):
    """A loaded causal LM and its tokenizer."""

    tokenizer: Any
    model: Any


def first_line(obj: Any) -> str:
    """The first line of ``str(obj)`` ('' when empty): error details that fit one line."""
    text = str(obj).strip()
    return text.splitlines()[0] if text else ""


def canonical_dtype(dtype: str) -> str:
    """The canonical torch name of a dtype spelling (``bf16`` -> ``bfloat16``), or ``auto``.

    Args:
        dtype: ``auto`` or a key of :data:`DTYPE_NAMES` (any case).

    Raises:
        UserError: for any other name.
    """
    key = str(dtype).lower()
    if key == "auto":
        return key
    if key not in DTYPE_NAMES:
        raise UserError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return DTYPE_NAMES[key]


def resolve_device(device: str | None) -> str:
    """``device``, or CUDA when it is available and CPU otherwise when ``device`` is None."""
    if device:
        return str(device)
    import torch  # heavy: the substring judge and the style rules import this module without it

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(
    dtype: str | torch.dtype | None, device: str | torch.device = "cpu"
) -> torch.dtype:
    """The torch dtype to load weights in.

    ``None`` means bfloat16 on CUDA and float32 elsewhere (the judges' default). ``auto``
    means bf16 where the hardware runs it fast, fp32 elsewhere: on a CPU with AVX512-BF16
    (or AMX) bf16 generation is ~3x faster than fp32; on one without, bf16 matmuls are
    emulated and much slower, so fp32 is the right default there.

    Args:
        dtype: a torch dtype, ``None``, ``auto`` or a name of :data:`DTYPE_NAMES`.
        device: where the model will run.

    Example:
        >>> resolve_dtype("bf16")
        torch.bfloat16
    """
    import torch  # heavy: the substring judge and the style rules import this module without it

    if isinstance(dtype, torch.dtype):
        return dtype
    device = torch.device(device)
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    name = canonical_dtype(dtype)
    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return torch.bfloat16
        except (AttributeError, RuntimeError):
            pass
    return torch.float32


@contextlib.contextmanager
def quiet_weight_loading():
    """Hide transformers' "Loading weights" bar: a sub-second load of a cached model would
    print it in every stage of every run."""
    from transformers.utils import logging as hf_logging  # heavy; only when loading

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _hub_kwargs(revision: str | None, local_files_only: bool, trust_remote_code: bool,
                extra: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = dict(extra)
    if revision:
        kw["revision"] = revision
    if local_files_only:
        kw["local_files_only"] = True
    if trust_remote_code:
        kw["trust_remote_code"] = True
    return kw


def _load_error(exc: Exception, source: str, error: str, hint: str) -> UserError:
    if isinstance(exc, ValueError) and "trust_remote_code" in str(exc):
        return UserError(f"model {source!r} needs custom code; pass --trust-remote-code if you "
                         "trust it")
    detail = first_line(exc)[:200]
    return UserError(f"{error} ({exc.__class__.__name__}" + (f": {detail}" if detail else "")
                     + ")" + (f". {hint}" if hint else ""))


def load_tokenizer(
    source: str | Path,
    *,
    error: str | None = None,
    hint: str = "",
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    **kwargs: Any,
):
    """``AutoTokenizer.from_pretrained`` with a one-line :class:`UserError` on failure.

    Args:
        source: hub id or local folder.
        error: the start of the error sentence (default ``cannot load tokenizer 'x'``).
        hint: a sentence appended to the error (what to do about it).
        revision, local_files_only, trust_remote_code: passed to transformers when set.
        **kwargs: further ``from_pretrained`` arguments (e.g. ``gguf_file``).
    """
    from transformers import AutoTokenizer  # heavy; only when loading

    kw = _hub_kwargs(revision, local_files_only, trust_remote_code, kwargs)
    try:
        return AutoTokenizer.from_pretrained(str(source), **kw)
    except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot load"
        raise _load_error(exc, str(source), error or f"cannot load tokenizer {str(source)!r}",
                          hint) from exc


def load_causal_lm(
    source: str | Path,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    tokenizer: Any = None,
    error: str | None = None,
    hint: str = "",
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    quiet: bool = True,
    **kwargs: Any,
) -> HFModel:
    """Load a tokenizer and a causal LM, put the model on its device in eval mode.

    Args:
        source: hub id or local folder.
        dtype: see :func:`resolve_dtype` (``None``: bf16 on CUDA, fp32 elsewhere).
        device: see :func:`resolve_device` (``None``: CUDA if available, else CPU).
        tokenizer: an already loaded tokenizer to keep (it is not loaded again).
        error: the start of the error sentence (default ``cannot load model 'x'``).
        hint: a sentence appended to the error (what to do about it).
        revision, local_files_only, trust_remote_code: passed to transformers when set.
        quiet: hide transformers' weight-loading progress bar.
        **kwargs: further ``from_pretrained`` arguments (e.g. ``gguf_file``).

    Example:
        >>> tok, model = load_causal_lm("path/to/folder", dtype="float32", device="cpu")  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM  # heavy; only when loading

    device = resolve_device(device)
    error = error or f"cannot load model {str(source)!r}"
    hub = dict(revision=revision, local_files_only=local_files_only,
               trust_remote_code=trust_remote_code)
    if tokenizer is None:
        tokenizer = load_tokenizer(source, error=error, hint=hint, **hub, **kwargs)
    kw = _hub_kwargs(revision, local_files_only, trust_remote_code, kwargs)
    try:
        with quiet_weight_loading() if quiet else contextlib.nullcontext():
            model = AutoModelForCausalLM.from_pretrained(
                str(source), dtype=resolve_dtype(dtype, device), **kw)
    except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot load"
        raise _load_error(exc, str(source), error, hint) from exc
    model.to(device)
    model.eval()
    return HFModel(tokenizer, model)
