"""Hub errors become one actionable UserError; missing local files are named."""

from __future__ import annotations

import pytest

from refusal_atlas.data.sources.coconot import load_coconot
from refusal_atlas.data.sources.sorrybench import load_sorrybench
from refusal_atlas.data.sources.wildguard import load_wildguardtest
from refusal_atlas.data.sources.xstest import load_xstest
from refusal_atlas.errors import UserError

from .fakes import raiser


def test_gated_dataset_error(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", raiser(datasets.exceptions.DatasetNotFoundError(
        "Dataset 'sorry-bench/sorry-bench-202406' is a gated dataset on the Hub. You must be "
        "authenticated to access it.")))
    with pytest.raises(UserError) as err:
        load_sorrybench()
    msg = str(err.value)
    assert "gated" in msg and "huggingface-cli login" in msg
    assert "https://huggingface.co/datasets/sorry-bench/sorry-bench-202406" in msg
    assert "path=" in msg


def test_gated_repo_error_class(monkeypatch):
    import datasets
    from huggingface_hub.errors import GatedRepoError

    # built without an HTTP response; the message alone would not say "gated"
    exc = GatedRepoError.__new__(GatedRepoError)
    Exception.__init__(exc, "403 Client Error: access to this repo is restricted")
    monkeypatch.setattr(datasets, "load_dataset", raiser(exc))
    with pytest.raises(UserError, match="huggingface-cli login"):
        load_wildguardtest()


def test_unreachable_hub_error(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", raiser(ConnectionError(
        "Couldn't reach 'allenai/coconot' on the Hub (LocalEntryNotFoundError)")))
    with pytest.raises(UserError, match="cannot reach the Hugging Face hub.*pass local files"):
        load_coconot()


def test_other_hub_error(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", raiser(ValueError("Unknown split 'test'")))
    with pytest.raises(UserError, match="could not load XSTest.*Unknown split"):
        load_xstest()



def test_missing_local_files(tmp_path):
    with pytest.raises(UserError, match="has no WildGuardTest file"):
        load_wildguardtest(tmp_path)
    with pytest.raises(UserError, match="no such file or folder"):
        load_xstest(tmp_path / "nope.csv")
