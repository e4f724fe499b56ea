"""Directions made elsewhere: GGUF, steering-vectors, plain safetensors, run folders."""

from __future__ import annotations

import pytest
import torch

from refusal_atlas.artifacts import write_tensors
from refusal_atlas.directions import save_directions
from refusal_atlas.errors import UserError
from refusal_atlas.export import (
    direction_to_llamacpp,
    direction_to_steering_vector_file,
    directions_from_steering_vector,
    directions_to_safetensors,
    read_directions_file,
    read_extra_directions,
    write_control_vector,
)

from .conftest import random_direction


def test_own_exports_read_back_with_the_same_layer_and_gap(qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=3, name="safety")
    for path in (direction_to_llamacpp(d, tmp_path / "safety.gguf", model_hint="qwen2"),
                 direction_to_steering_vector_file(d, tmp_path / "safety.sv.safetensors")):
        (back,) = read_directions_file(path, d_model=qwen_tiny.d_model).values()
        assert back.split == "safety" and back.layer == 3
        assert torch.allclose(back.vector, d.vector, atol=1e-6)
        assert back.projection_gap == pytest.approx(d.projection_gap, rel=1e-5)
    path = directions_to_safetensors({"safety": d, "other": random_direction(qwen_tiny, 2, 1)},
                                     tmp_path / "plain.safetensors")
    back = read_directions_file(path)
    assert sorted((n, x.layer) for n, x in back.items()) == [("other", 2), ("safety", 3)]


def test_multi_layer_sources_give_one_direction_per_layer(tmp_path):
    path = write_control_vector(tmp_path / "happy.gguf", {2: torch.ones(4), 5: -torch.ones(4)},
                                model_hint="llama")
    assert list(read_directions_file(path)) == ["happy.L2", "happy.L5"]


def test_plain_tensors_named_with_their_layer(tmp_path):
    path = write_tensors(tmp_path / "x.safetensors", {"refuse@7": torch.ones(4)})
    (d,) = read_directions_file(path).values()
    assert d.split == "refuse" and d.layer == 7 and d.projection_gap == pytest.approx(2.0)
    bare = write_tensors(tmp_path / "y.safetensors", {"refuse": torch.ones(4)})
    with pytest.raises(UserError, match="has no layer; name it refuse@LAYER"):
        read_directions_file(bare)


def test_a_run_directions_file(qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=2, name="Alpha")
    paths = save_directions({"Alpha": d}, tmp_path / "run" / "directions")
    back = read_directions_file(paths["tensors"])
    assert back["Alpha"].layer == 2 and back["Alpha"].projection_gap == d.projection_gap


def test_a_steering_vectors_object():
    from types import SimpleNamespace

    sv = SimpleNamespace(layer_activations={4: 2 * torch.ones(4)}, layer_type="decoder_block")
    (d,) = directions_from_steering_vector(sv, "caa").values()
    assert d.layer == 5 and d.projection_gap == pytest.approx(4.0)


def test_bad_input_is_one_line(tmp_path):
    path = write_control_vector(tmp_path / "a.gguf", {2: torch.ones(4)}, model_hint="llama")
    with pytest.raises(UserError, match="n_embd 4"):
        read_directions_file(path, d_model=64)
    with pytest.raises(UserError, match="never pickle"):
        (tmp_path / "a.pt").write_bytes(b"x")
        read_directions_file(tmp_path / "a.pt")
    with pytest.raises(UserError, match="not found"):
        read_directions_file(tmp_path / "missing.gguf")
    with pytest.raises(UserError, match="has the name of a direction of the run"):
        read_extra_directions([path], taken=["a"])
    write_control_vector(tmp_path / "sub" / "a.gguf", {3: torch.ones(4)}, model_hint="llama")
    with pytest.raises(UserError, match="another extra direction"):
        read_extra_directions([path, tmp_path / "sub" / "a.gguf"])
    zero = write_tensors(tmp_path / "z.safetensors", {"z@3": torch.zeros(4)})
    with pytest.raises(UserError, match="all zeros"):
        read_directions_file(zero)
