"""One direction in each format: strength and layers."""

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.export import steering_layers

from .conftest import random_direction


def test_default_strength_is_the_projection_gap(qwen_tiny):
    d = random_direction(qwen_tiny, layer=3)
    vectors, alpha = steering_layers(d)
    assert alpha == pytest.approx(d.projection_gap) and list(vectors) == [3]
    assert torch.allclose(vectors[3], d.projection_gap * d.vector)


def test_a_band_of_layers(qwen_tiny):
    d = random_direction(qwen_tiny, layer=3)
    vectors, alpha = steering_layers(d, alpha=2.0, layers=[2, 3, 4], n_layers=4)
    assert alpha == 2.0 and list(vectors) == [2, 3, 4]
    with pytest.raises(UserError, match="out of range"):
        steering_layers(d, layers=[5], n_layers=4)
