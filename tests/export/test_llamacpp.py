"""llama.cpp control vectors: the file llama.cpp reads, and its layer semantics reproduced
with our hooks (added to the output of block il == resid_pre il + 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.export import direction_to_llamacpp, read_control_vector, write_control_vector
from refusal_atlas.generation import generate
from refusal_atlas.hooks import decoder_layers

from .conftest import PROMPTS, random_direction

gguf = pytest.importorskip("gguf")


def _llamacpp_apply(model, path, strength: float = 1.0):
    """What llama.cpp does with a control-vector file, written against the GGUF itself:
    ``direction.il`` (il >= 1) times the strength is added to the output of block il."""
    reader = gguf.GGUFReader(str(path))
    blocks = decoder_layers(model)
    handles = []
    for tensor in reader.tensors:
        il = int(tensor.name.split(".")[1])
        assert il >= 1
        vec = torch.from_numpy(np.array(tensor.data, dtype=np.float32)) * strength

        def hook(_m, _a, output, vec=vec):
            if isinstance(output, tuple):
                return (output[0] + vec.to(output[0].dtype), *output[1:])
            return output + vec.to(output.dtype)

        handles.append(blocks[il].register_forward_hook(hook))
    return handles


def test_the_file_is_what_llama_cpp_reads(qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=2)
    path = direction_to_llamacpp(d, tmp_path / "toy.gguf", model_hint="qwen2", alpha=3.0,
                                 layers=[2, 3, 4], n_layers=qwen_tiny.n_layers)
    reader = gguf.GGUFReader(str(path))
    assert reader.get_field("general.architecture").contents() == "controlvector"
    assert reader.get_field("controlvector.model_hint").contents() == "qwen2"
    assert reader.get_field("controlvector.layer_count").contents() == 3
    assert [t.name for t in reader.tensors] == ["direction.1", "direction.2", "direction.3"]
    for t in reader.tensors:
        assert t.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(t.shape) == [qwen_tiny.d_model]
        assert np.allclose(np.array(t.data), 3.0 * d.vector.numpy(), atol=1e-6)


def test_llama_cpp_semantics_equal_our_resid_pre_steering(tiny_lm, tmp_path):
    """The exported vector applied the llama.cpp way gives the tokens our hook gives."""
    d = random_direction(tiny_lm, layer=2)
    alpha = 4.0 * d.projection_gap
    path = direction_to_llamacpp(d, tmp_path / "toy.gguf", model_hint="x", alpha=alpha,
                                 n_layers=tiny_lm.n_layers)
    with d.steer(tiny_lm, alpha):
        ours = generate(tiny_lm, PROMPTS, max_new_tokens=8)
    handles = _llamacpp_apply(tiny_lm.model, path)
    try:
        theirs = generate(tiny_lm, PROMPTS, max_new_tokens=8)
    finally:
        for h in handles:
            h.remove()
    plain = generate(tiny_lm, PROMPTS, max_new_tokens=8)
    assert theirs.token_ids == ours.token_ids
    assert ours.token_ids != plain.token_ids  # the push is strong enough to matter


def test_strength_scales_like_control_vector_scaled(qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=3)
    path = direction_to_llamacpp(d, tmp_path / "u.gguf", model_hint="qwen2", alpha=1.0)
    batch_prompts = PROMPTS[:2]
    with d.steer(qwen_tiny, 7.5):
        ours = generate(qwen_tiny, batch_prompts, max_new_tokens=6)
    handles = _llamacpp_apply(qwen_tiny.model, path, strength=7.5)
    try:
        theirs = generate(qwen_tiny, batch_prompts, max_new_tokens=6)
    finally:
        for h in handles:
            h.remove()
    assert theirs.token_ids == ours.token_ids


def test_round_trip(tmp_path):
    vecs = {2: torch.arange(4.0), 5: -torch.ones(4)}
    path = write_control_vector(tmp_path / "x.gguf", vecs, model_hint="llama",
                                metadata={"note": "hi"})
    cv = read_control_vector(path, d_model=4)
    assert cv.model_hint == "llama" and cv.metadata == {"note": "hi"}
    assert cv.llamacpp_layers() == [1, 4]
    assert set(cv.vectors) == {2, 5} and torch.equal(cv.vectors[2], vecs[2])


@pytest.mark.parametrize("layer", [0, 1])
def test_layers_llama_cpp_cannot_express(layer, qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=layer)
    with pytest.raises(UserError, match=r"resid_pre layers? (is out of range|.*2)") as err:
        direction_to_llamacpp(d, tmp_path / "x.gguf", model_hint="qwen2",
                              n_layers=qwen_tiny.n_layers)
    assert len(str(err.value).splitlines()) == 1


def test_layer_above_the_model(qwen_tiny, tmp_path):
    d = random_direction(qwen_tiny, layer=2)
    with pytest.raises(UserError, match="out of range"):
        direction_to_llamacpp(d, tmp_path / "x.gguf", model_hint="qwen2", layers=[9],
                              n_layers=qwen_tiny.n_layers)


def test_bad_files_are_one_line(tmp_path):
    path = write_control_vector(tmp_path / "x.gguf", {3: torch.ones(8)}, model_hint="llama")
    with pytest.raises(UserError, match="n_embd 8; this model has d_model 64"):
        read_control_vector(path, d_model=64)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(UserError, match="not a readable GGUF"):
        read_control_vector(junk)
    model_file = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(model_file), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((2, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError, match="not a control vector"):
        read_control_vector(model_file)
    with pytest.raises(UserError, match="not found"):
        read_control_vector(tmp_path / "missing.gguf")
