"""Tests for refusal_atlas.converted_cache: checksums of the converted weights in the cache.

Issue 10: a flipped byte in the cached converted weights changed 75/90 responses (exit 0);
a flipped header byte made transformers initialise the embeddings at random (exit 0).
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import pytest

from refusal_atlas import converted_cache, models
from refusal_atlas.errors import UserError
from refusal_atlas.models import PackagedModel, load_model
from refusal_atlas.paths import cache_dir

SHA = "ab" * 32


@pytest.fixture
def packaged(monkeypatch, tiny_model_dirs):
    """A packaged model already converted into the cache, as the first run leaves it."""
    model = PackagedModel(name="fake-model", wheels=("fake==1",), members=("fake/x.bin",),
                          sha256=SHA, hub_repo="fake/fake", description="fake")
    monkeypatch.setitem(models.PACKAGED_MODELS, "fake-model", model)
    monkeypatch.setattr(models, "_fetch_packaged_gguf",
                        lambda p: pytest.fail("the cached conversion must be used"))
    folder = cache_dir() / "models" / "fake-model"
    shutil.copytree(tiny_model_dirs["llama"], folder)
    converted_cache.write_marker(folder, {"name": "fake-model", "sha256": SHA,
                                          "source": "pypi:fake==1"})
    return folder


def _flip(path, offset, keep_mtime=False):
    stat = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _header_len(path):
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def _damaged(folder):
    with pytest.raises(UserError) as err:
        load_model("fake-model", dtype="float32")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"the cached converted model in {folder} is damaged")
    assert f"rm -rf {folder}" in message
    return message


def test_the_checksum_is_recorded_and_an_intact_cache_loads(packaged):
    recorded = json.loads((packaged / converted_cache.MARKER).read_text())["weights"]
    assert set(recorded) == {"model.safetensors"}
    assert {"size", "header_sha256", "sample_sha256", "sha256", "mtime_ns"} <= set(
        recorded["model.safetensors"])
    assert load_model("fake-model", dtype="float32").n_layers == 4


def test_a_flipped_weight_byte_outside_the_samples_is_caught(packaged, monkeypatch):
    # tiny samples, so that the flipped byte is surely outside them: the full hash, run
    # because the write changed the mtime, must catch it
    monkeypatch.setattr(converted_cache, "SAMPLE_BLOCK", 16)
    meta = json.loads((packaged / converted_cache.MARKER).read_text())
    converted_cache.write_marker(packaged, meta)
    weights = packaged / "model.safetensors"
    step = weights.stat().st_size // converted_cache.SAMPLE_COUNT
    assert 8 + _header_len(weights) < 3 * step
    _flip(weights, 3 * step + step // 2)
    assert "its content differs" in _damaged(packaged)


def test_a_flipped_header_byte_is_caught(packaged):
    weights = packaged / "model.safetensors"
    _flip(weights, 8 + 20, keep_mtime=True)  # inside the tensor names: caught without mtime
    assert "header differs" in _damaged(packaged)


def test_a_sampled_block_is_checked_even_when_the_mtime_is_kept(packaged):
    weights = packaged / "model.safetensors"
    _flip(weights, weights.stat().st_size // 16 * 5 + 7, keep_mtime=True)
    assert "its sampled content differs" in _damaged(packaged)


def test_truncated_or_missing_weights_are_caught(packaged):
    weights = packaged / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.truncate(weights.stat().st_size - 100)
    assert "size differs" in _damaged(packaged)
    weights.unlink()
    assert "weight files are missing" in _damaged(packaged)


def test_a_touched_but_intact_file_is_rehashed_once(packaged, monkeypatch):
    weights = packaged / "model.safetensors"
    os.utime(weights, ns=(1, 1_000_000_000))
    load_model("fake-model", dtype="float32")
    assert json.loads((packaged / converted_cache.MARKER).read_text())[
        "weights"]["model.safetensors"]["mtime_ns"] == 1_000_000_000
    monkeypatch.setattr(converted_cache, "file_digest", lambda p: pytest.fail("full hash again"))
    load_model("fake-model", dtype="float32")


def test_a_cache_from_before_checksums_is_trusted_on_first_use(packaged):
    marker = packaged / converted_cache.MARKER
    meta = json.loads(marker.read_text())
    del meta["weights"]
    marker.write_text(json.dumps(meta))
    load_model("fake-model", dtype="float32")
    assert "weights" in json.loads(marker.read_text())
    weights = packaged / "model.safetensors"
    _flip(weights, weights.stat().st_size - 10)
    _damaged(packaged)


def test_a_converted_gguf_is_checked_too(tiny_model_dirs, tmp_path):
    sha = "cd" * 32
    target = cache_dir() / "gguf" / sha[:16]
    shutil.copytree(tiny_model_dirs["qwen2"], target)
    converted_cache.write_marker(target, {"name": "m", "sha256": sha, "source": "gguf:m"})
    assert models._convert_gguf(tmp_path / "m.gguf", sha, name="m") == target
    _flip(target / "model.safetensors", (target / "model.safetensors").stat().st_size // 2)
    with pytest.raises(UserError, match=f"rm -rf {target}"):
        models._convert_gguf(tmp_path / "m.gguf", sha, name="m")


def test_an_unreadable_marker_means_convert_again(tmp_path):
    (tmp_path / converted_cache.MARKER).write_text("{not json")
    assert converted_cache.read_marker(tmp_path) is None
    assert converted_cache.read_marker(tmp_path / "missing") is None
