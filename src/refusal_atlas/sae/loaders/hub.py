"""Hub downloads and the helpers every SAE format's loader shares.

Every failure of a download becomes a :class:`~refusal_atlas.errors.UserError` with one
sentence that says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import UserError


def hub_download(repo_id: str, filename: str) -> Path:
    """``huggingface_hub.hf_hub_download`` with every failure turned into a UserError.

    Args:
        repo_id: ``OWNER/REPO`` on the Hugging Face hub.
        filename: the file's path inside the repo.

    Example:
        >>> hub_download("google/gemma-scope-9b-it-res",
        ...              "layer_20/width_16k/average_l0_14/params.npz")  # doctest: +SKIP
    """
    try:  # lazily: only hub paths need it
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
            f"could not download {where} ({type(exc).__name__}: {first_line(exc)}); "
            "check the network and your hub login, or pass a local path"
        ) from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def looks_like_hub_path(spec: str, min_parts: int = 3) -> bool:
    """``OWNER/REPO/...`` with at least ``min_parts`` parts, and not a local-looking path."""
    if not spec or spec.startswith(("/", ".", "~")) or "\\" in spec or ":" in spec:
        return False
    parts = [p for p in spec.strip("/").split("/") if p]
    return len(parts) >= min_parts


def as_tensor(value: Any, name: str, source: str) -> torch.Tensor:
    """A torch tensor from a tensor or a numpy array (anything else: a UserError)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise UserError(f"{source}: entry {name!r} is not a tensor")


def clamp_threshold(threshold: torch.Tensor) -> torch.Tensor:
    """Sources apply ReLU as well as the jump; with threshold >= 0 our formula is identical."""
    return threshold.clamp_min(0)

