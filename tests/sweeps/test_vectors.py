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


def test_span_vector_is_an_orthonormal_basis_of_the_same_span(qwen_tiny):
    import torch

    from refusal_atlas.sweeps import LayerVector, span_vector

    raw = torch.randn(3, qwen_tiny.d_model, generator=torch.Generator().manual_seed(0))
    v = span_vector(raw, layer=1)
    q = v.basis
    torch.testing.assert_close(q @ q.T, torch.eye(3), rtol=0, atol=1e-5)
    # same span: projecting the input rows onto q's span gives them back
    torch.testing.assert_close(raw @ q.T @ q, raw, rtol=1e-4, atol=1e-4)
    assert torch.dot(v.vector, raw[0]) > 0 and abs(v.norm - 1) < 1e-6
    check_conditions([Condition("ablate", "S")], {"S": v}, qwen_tiny.model)
    bad = LayerVector(q[0], 1, basis=torch.stack([q[0], q[0]]))
    with pytest.raises(UserError, match="orthonormal"):
        check_conditions([Condition("ablate", "S")], {"S": bad})
