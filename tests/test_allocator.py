"""keep_freed_memory: the process reuses freed blocks instead of faulting in new pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from refusal_atlas.allocator import is_glibc

# 20 allocations of a 40 MB tensor, each written and freed (after 5 that grow the heap):
# the page faults they cost
_FAULTS = """
import resource, sys, torch
import refusal_atlas as ra
applied = ra.keep_freed_memory() if sys.argv[1] == "keep" else False
for _ in range(5):
    torch.empty(10_000_000).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(10_000_000).fill_(1.0)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(not is_glibc(), reason="glibc only")


def _faults(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True,
                         check=True, env={**os.environ, **env}).stdout.split()
    return out[0], int(out[1])


@glibc
def test_freed_blocks_are_reused_without_page_faults():
    applied, kept = _faults("keep")
    _, system = _faults("system")
    assert applied == "True"
    # each new 40 MB mapping costs ~10k faults (4 KiB pages); a reused heap block none once
    # the heap has grown to hold the loop's blocks (measured: 30-40k against 195k)
    assert system > 20 * 5_000
    assert kept < system / 3


@glibc
def test_the_environment_can_leave_the_system_allocator_alone():
    applied, faults = _faults("keep", REFUSAL_ATLAS_MALLOC="system")
    assert applied == "False"
    assert faults > 20 * 5_000


def test_returns_whether_the_settings_are_in_force():
    import refusal_atlas as ra

    first = ra.keep_freed_memory()
    assert ra.keep_freed_memory() is first  # once per process; a second call is a no-op
    if is_glibc():
        assert first is True
