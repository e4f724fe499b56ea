"""Tests for refusal_atlas.paths: the cache folder, created and checked before use.

Issue 10: ``REFUSAL_ATLAS_CACHE`` under a regular file, or unwritable, ended in a traceback.
Tests run as root, whom permissions do not stop, so "unwritable" is simulated.
"""

from __future__ import annotations

import pytest

from refusal_atlas import paths
from refusal_atlas.errors import UserError


def test_cache_is_created_and_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(tmp_path / "a" / "b"))
    assert paths.writable_cache_dir() == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write check leaves nothing


def test_cache_under_a_regular_file_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(blocker / "cache"))
    with pytest.raises(UserError) as err:
        paths.writable_cache_dir()
    message = str(err.value)
    assert "\n" not in message and "REFUSAL_ATLAS_CACHE" in message
    assert f"{blocker / 'cache'} cannot be created: {blocker} is a regular file" in message
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(blocker))
    with pytest.raises(UserError, match="is a regular file"):
        paths.writable_cache_dir()


def test_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(tmp_path / "ro"))
    monkeypatch.setattr(paths, "_can_write", lambda folder: False)
    with pytest.raises(UserError, match=r"the refusal-atlas cache \(set by REFUSAL_ATLAS_CACHE\) "
                                        r".*ro is not writable; set REFUSAL_ATLAS_CACHE to a "
                                        "writable folder"):
        paths.writable_cache_dir()


def test_uncreatable_cache_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", "/proc/refusal-atlas-cache")
    with pytest.raises(UserError, match="cannot be created"):
        paths.writable_cache_dir()


def test_the_error_names_the_setting_that_chose_the_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.delenv("REFUSAL_ATLAS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(UserError, match="set by XDG_CACHE_HOME"):
        paths.writable_cache_dir()


def test_model_loading_reports_a_bad_cache(tmp_path, monkeypatch):
    from refusal_atlas.models import load_model

    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(blocker / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    for name in ("smollm2-135m-instruct", str(gguf)):
        with pytest.raises(UserError, match="REFUSAL_ATLAS_CACHE") as err:
            load_model(name, dtype="float32")
        assert "\n" not in str(err.value)
