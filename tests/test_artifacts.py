"""Artifact I/O: a damaged artifact is one line that names the file and the ``--force`` that
rewrites it, never a json / safetensors traceback; a torn JSONL tail is still repaired."""

import hashlib
import json

import pytest
import torch

from refusal_atlas.artifacts import (
    append_jsonl,
    file_digest,
    read_json,
    read_jsonl,
    read_tensors,
    write_json,
    write_tensors,
)
from refusal_atlas.errors import UserError


def _stage_folder(tmp_path, name):
    folder = tmp_path / "run" / name
    folder.mkdir(parents=True)
    write_json(folder / "_done.json", {"fingerprint": "x"})
    return folder


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("keep", [0, 7, 60, -3])
def test_truncated_safetensors_is_one_line_naming_the_stage(tmp_path, keep):
    path = _stage_folder(tmp_path, "directions") / "directions.safetensors"
    write_tensors(path, {"a": torch.randn(8, 16), "b": torch.randn(3)})
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(UserError) as info:
        read_tensors(path)
    text = _one_line(info)
    assert str(path) in text and "unreadable" in text and "--force directions" in text


def test_garbage_safetensors_outside_a_run_folder(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\xff" * 200)
    with pytest.raises(UserError) as info:
        read_tensors(path)
    assert "unreadable" in _one_line(info) and "--force STAGE" in str(info.value)


@pytest.mark.parametrize("content", [b"garbage{", b"\x89PNG\r\n\x1a\n\x00\xff", b"",
                                     b'{"splits": ["a"'])
def test_garbage_json_artifact_is_one_line(tmp_path, content):
    path = _stage_folder(tmp_path, "pools") / "pools.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_json(path)
    text = _one_line(info)
    assert str(path) in text and "unreadable" in text and "--force pools" in text


def test_json_of_the_wrong_type_with_expect(tmp_path):
    path = _stage_folder(tmp_path, "pools") / "pools.json"
    path.write_text("[1, 2]")
    assert read_json(path) == [1, 2]
    with pytest.raises(UserError, match="a JSON list, not a dict"):
        read_json(path, expect=dict)


def test_missing_json_is_file_not_found(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_json(tmp_path / "nope.json")


def test_jsonl_torn_tail_is_ignored_even_inside_a_multibyte_character(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"text": "héllo"}, {"text": "wörld \u2028 line separator"}])
    whole = path.read_bytes()
    torn = json.dumps({"text": "ééé"}, ensure_ascii=False).encode()
    path.write_bytes(whole + torn[:9])  # cut inside the two bytes of an é
    assert read_jsonl(path) == [{"text": "héllo"}, {"text": "wörld \u2028 line separator"}]


def test_jsonl_bad_middle_line_is_one_line(tmp_path):
    path = _stage_folder(tmp_path, "labels") / "labels.jsonl"
    path.write_text('{"a": 1}\n{oops\n{"a": 2}\n')
    with pytest.raises(UserError) as info:
        read_jsonl(path)
    assert "line 2" in _one_line(info) and "--force labels" in str(info.value)


def test_file_digest_is_the_sha256_of_the_content(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 9000  # more than one read block
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1])
    assert file_digest(path) != hashlib.sha256(data).hexdigest()
