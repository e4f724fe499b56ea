"""Hub downloads: every failure is one UserError that says what to do."""

from __future__ import annotations

import huggingface_hub
import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sae import load_gemma_scope


def test_gemma_scope_hub_errors(monkeypatch):
    from huggingface_hub import errors as hf_errors

    def offline(repo_id, filename, **kw):
        raise hf_errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(UserError, match="unreachable"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")

    def gated(repo_id, filename, **kw):
        err = hf_errors.GatedRepoError.__new__(hf_errors.GatedRepoError)
        Exception.__init__(err, "403 gated")
        raise err

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(UserError, match="denied.*licence"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")

    def broken(repo_id, filename, **kw):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(UserError, match="ConnectionError"):
        load_gemma_scope("google/gemma-scope-9b-it-res/layer_20/width_16k/average_l0_14")
