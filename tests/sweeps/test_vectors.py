"""Vectors: what a condition may name, and where."""

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sweeps import Condition, check_conditions

from .helpers import tiny_vectors


def test_check_conditions_errors(qwen_tiny):
    vectors = tiny_vectors(qwen_tiny)
    with pytest.raises(UserError, match="unknown direction"):
        check_conditions([Condition("steer", "Z", 1.0)], vectors)
    with pytest.raises(UserError, match="unit"):
        check_conditions([Condition("ablate", "V")], vectors)
    with pytest.raises(UserError, match="out of range"):
        check_conditions([Condition("steer", "A", 1.0, layer=99)], vectors, qwen_tiny.model)
