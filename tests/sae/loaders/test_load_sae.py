"""load_sae: one place that picks the format from a spec."""

from __future__ import annotations

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sae import load_sae


def test_load_sae_dispatch_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_sae(str(tmp_path / "missing.npz"))
    (tmp_path / "weights.bin").write_bytes(b"1")
    with pytest.raises(UserError, match="unknown SAE file format"):
        load_sae(str(tmp_path / "weights.bin"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError, match="recognises"):
        load_sae(str(tmp_path / "dir"))
    with pytest.raises(UserError, match="prefix"):
        load_sae("someone/some-repo/some/folder")
    with pytest.raises(UserError, match="RELEASE/SAE_ID"):
        load_sae("saelens:only-release")
