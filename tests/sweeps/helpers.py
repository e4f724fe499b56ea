"""Shared pieces of the sweep tests: tiny vectors, prompts and a mixed grid."""

import pytest
import torch

from refusal_atlas.sweeps import BASELINE, Condition, LayerVector, SweepPrompt

TEXTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and the sea.",
         "What is the capital of France?", "Write a poem about the sea (r)",
         "How do I kill a Python process?"]
GROUPS = ["HR", "BC", "HC", "BR", "HR", "BC"]

MIXED = [BASELINE, Condition("steer", "A", 6.0), Condition("steer", "B", -5.0),
         Condition("steer", "A", 4.0, layer=1), Condition("vector", "V", 3.0),
         Condition("ablate", "A"), Condition("ablate", "B"), Condition("steer", "B", 0.0)]


def unit(d, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    return scale * v / v.norm()


def tiny_vectors(lm):
    d, n = lm.d_model, lm.n_layers
    return {"A": LayerVector(unit(d, 1), 2), "B": LayerVector(unit(d, 2), 1),
            "V": LayerVector(unit(d, 3, scale=3.0), n - 1, source="sae")}


def tiny_prompts(k=len(TEXTS)):
    return [SweepPrompt(f"p{i}", TEXTS[i], GROUPS[i] in ("HR", "HC"), GROUPS[i], "s")
            for i in range(k)]


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
"""Parametrize device tests with this: CUDA runs wherever there is one."""
