"""Keep freed memory in the process: glibc's allocator settings for CPU inference.

Every forward pass allocates and frees the same tensors again: activations of 1-10 MB,
logits of ~40 MB (128 rows x 151936 tokens in bf16), SAE gradients of ~13 MB. glibc serves
blocks above its mmap threshold (dynamic, at most 32 MiB) with a fresh ``mmap`` and gives
them back on free, and trims its heap when the free top grows, so the kernel maps and zeroes
new pages on every step: 24 decoding steps of 128 rows of Qwen2.5-0.5B took 1.1-1.7 million
minor page faults (~190 MB of new pages a step). With the thresholds raised these blocks are
reused from the heap (4-25 thousand faults). On a 2-core AMD EPYC decoding was 1.05x faster
(``benchmarks/bench_allocator.py``) and the demo 1.04x (9.9 million faults -> 1.0 million),
with identical outputs.

The price: the heap keeps its high-water mark (the demo's peak resident memory stayed 4.19 GB; the
memory is not handed back to the system until the process ends). Blocks of 1 GiB and more
are still mapped and unmapped on their own.

This changes the whole process, so the library never does it on import: the command line,
:func:`~refusal_atlas.pipeline.run_pipeline` and the Ray workers call
:func:`keep_freed_memory`; a Python user may call it first. ``REFUSAL_ATLAS_MALLOC=system``
leaves the system allocator's settings as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["is_glibc", "keep_freed_memory"]

_ENV = "REFUSAL_ATLAS_MALLOC"
# mallopt parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes an int: the largest, i.e. never trim

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once; see the module
    docstring). Returns whether the settings are in force: False on another C library
    (macOS, musl), or when ``REFUSAL_ATLAS_MALLOC=system``.

    Example:
        >>> import refusal_atlas as ra
        >>> ra.keep_freed_memory()  # before loading the model  # doctest: +SKIP
        True
    """
    global _applied
    if os.environ.get(_ENV, "").strip().lower() == "system":
        return bool(_applied)
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def is_glibc() -> bool:
    """Whether this process runs on Linux with glibc (the only C library whose settings
    :func:`keep_freed_memory` knows)."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _set_thresholds() -> bool:
    if not is_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # both: setting the trim threshold alone turns glibc's dynamic mmap threshold off and
    # maps every block over 128 KiB (measured: 4-9x the faults of no setting at all)
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
