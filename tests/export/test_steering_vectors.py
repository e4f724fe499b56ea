"""steering-vectors: key L-1 for resid_pre L; applying the exported object through the
library gives the tokens our hooks give (fp32)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.export import direction_to_steering_vector, from_steering_vector
from refusal_atlas.export.steering_vectors import (
    library_layers,
    read_steering_vector_file,
    write_steering_vector_file,
)
from refusal_atlas.generation import generate

from .conftest import PROMPTS, random_direction


def test_layer_keys_are_block_outputs():
    v = torch.ones(3)
    assert list(library_layers({1: v, 7: v})) == [0, 6]
    with pytest.raises(UserError, match="resid_pre layer 0"):
        library_layers({0: v})


def test_reading_an_object_by_its_attributes():
    sv = SimpleNamespace(layer_activations={-1: torch.ones(2), 0: torch.zeros(2)},
                         layer_type="decoder_block")
    assert sorted(from_steering_vector(sv, n_layers=4)) == [1, 4]
    with pytest.raises(UserError, match="negative"):
        from_steering_vector(sv)
    with pytest.raises(UserError, match="does not act on the residual stream"):
        from_steering_vector(SimpleNamespace(layer_activations={1: torch.ones(2)},
                                             layer_type="mlp"))


def test_file_round_trip(tmp_path):
    vecs = {3: torch.arange(4.0), 4: torch.ones(4)}
    path = write_steering_vector_file(tmp_path / "sv.safetensors", vecs, metadata={"a": 1})
    back = read_steering_vector_file(path)
    assert set(back) == {3, 4} and torch.equal(back[3], vecs[3])


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_the_library_steers_like_our_hooks(family, tiny_model_dirs, tmp_path):
    pytest.importorskip("steering_vectors")
    from refusal_atlas.models import load_model

    lm = load_model(str(tiny_model_dirs[family]), dtype="float32")
    d = random_direction(lm, layer=2)
    alpha = 4.0 * d.projection_gap
    sv = direction_to_steering_vector(d, alpha=alpha, n_layers=lm.n_layers)
    assert list(sv.layer_activations) == [1] and sv.layer_type == "decoder_block"
    with d.steer(lm, alpha):
        ours = generate(lm, PROMPTS, max_new_tokens=8)
    with sv.apply(lm.model):
        theirs = generate(lm, PROMPTS, max_new_tokens=8)
    plain = generate(lm, PROMPTS, max_new_tokens=8)
    assert theirs.token_ids == ours.token_ids
    assert ours.token_ids != plain.token_ids
    # several layers at once, as a band
    sv = direction_to_steering_vector(d, alpha=alpha / 2, layers=[2, 3], n_layers=lm.n_layers)
    with d.steer(lm, alpha / 2, layer=2), d.steer(lm, alpha / 2, layer=3):
        ours = generate(lm, PROMPTS, max_new_tokens=8)
    with sv.apply(lm.model):
        theirs = generate(lm, PROMPTS, max_new_tokens=8)
    assert theirs.token_ids == ours.token_ids
