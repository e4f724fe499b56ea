"""Reaching the Hugging Face hub: decided once per process, quickly.

Left to itself huggingface_hub retries every file 5 times with backoff when the hub is
unreachable: ~50 s and 30 warning lines before a missing model name is reported. Instead a
single short connection attempt (or ``HF_HUB_OFFLINE``) decides, an unreachable hub means
"the local hub cache or nothing", and retry warnings are hidden.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["HUB_PROBE_TIMEOUT_S", "hub_failure", "hub_unreachable_reason", "is_local",
           "quiet_hub"]


_OFFLINE_VALUES = {"1", "on", "yes", "true"}
HUB_PROBE_TIMEOUT_S = 3.0


def hub_unreachable_reason() -> str | None:
    """Why the Hugging Face hub cannot be reached now, or None when it can.

    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` decide without a probe; otherwise one TCP
    connection to the hub endpoint (or the HTTPS proxy) with a 3 s timeout, once per process.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _OFFLINE_VALUES:
            return f"{var} is set"
    proxy = next((os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(v)), None)
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return _probe(proxy or endpoint)


@functools.cache
def _probe(url: str) -> str | None:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"connecting to {host}:{port} failed with '{exc.strerror or exc.__class__.__name__}'"


@contextlib.contextmanager
def quiet_hub():
    """Hide huggingface_hub's "Retrying in 1s" warnings: the one-line error says it all."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def is_local(source: str | Path) -> bool:
    """A local file or folder: transformers reads it without the hub."""
    return Path(source).expanduser().exists()


def hub_failure(exc: BaseException, source: str, offline: str | None) -> str | None:
    """A short reason for a failed hub load, or None when it was not about the hub."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:  # transformers wraps hub errors in OSError
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(isinstance(e, GatedRepoError) for e in chain):
        return f"the hub repository {source!r} is gated; accept its terms and log in (hf auth login)"
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return (f"the Hugging Face hub has no repository {source!r}, or it is private "
                "(log in with hf auth login)")
    if offline:
        return f"the hub cannot be reached: {offline}; nor is {source!r} in the local hub cache"
    return None
