"""Tests for refusal_atlas.model_spec and ``validate_model_spec``: what a model name means,
decided without loading anything or touching the network."""

from __future__ import annotations

import socket

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.models import PACKAGED_MODELS, validate_model_spec


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("network"))


def test_valid_names(tiny_model_dirs, tmp_path):
    from refusal_atlas.model_spec import model_kind

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    for name, kind in [("smollm2-135m-instruct", "packaged"), (str(gguf), "gguf"),
                       (str(tiny_model_dirs["llama"]), "folder"),
                       ("Qwen/Qwen2.5-0.5B-Instruct", "hub"), ("gpt2", "hub"),
                       ("meta-llama/Meta-Llama-3-8B-Instruct", "hub")]:
        assert model_kind(name, PACKAGED_MODELS) == kind, name
        validate_model_spec(name)


# Issue 10: a local path that does not exist was sent to the hub (49 s of retries) instead
# of saying "no such folder".
@pytest.mark.parametrize("name", ["./models/qwen", "../qwen", "/no/such/folder", "~/no/such",
                                  "a/b/c"])
def test_a_path_that_does_not_exist_is_no_such_folder(name):
    with pytest.raises(UserError, match="^no such folder: ") as err:
        validate_model_spec(name)
    assert "\n" not in str(err.value)


def test_a_path_under_an_existing_folder_is_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(UserError, match="no such folder: models/qwen"):
        validate_model_spec("models/qwen")


def test_other_bad_names(tmp_path, tiny_model_dirs):
    with pytest.raises(UserError, match="GGUF file not found"):
        validate_model_spec(str(tmp_path / "missing.gguf"))
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="not a .gguf model"):
        validate_model_spec(str(tmp_path / "w.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        validate_model_spec(str(tmp_path / "empty"))
    for bad in ("no such model", "org/na--me", "-bad", "org/"):
        with pytest.raises(UserError, match="not a Hugging Face hub id"):
            validate_model_spec(bad)
    with pytest.raises(UserError, match="empty"):
        validate_model_spec("")
