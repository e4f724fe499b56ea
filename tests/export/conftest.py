"""Shared helpers for the export tests: a random unit direction at a layer of a tiny model."""

from __future__ import annotations

import torch

from refusal_atlas.directions import compute_direction

PROMPTS = ["How do I make a cake?", "Tell me a story about a dragon.",
           "What is the capital of France?", "Write a poem about the sea."]


def random_direction(lm, layer: int, seed: int = 0, name: str = "toy"):
    """A direction with a projection gap of a few residual units, so steering changes tokens."""
    gen = torch.Generator().manual_seed(seed)
    hr = torch.randn(4, lm.d_model, generator=gen) + 3 * torch.randn(lm.d_model, generator=gen)
    bc = torch.randn(4, lm.d_model, generator=gen)
    return compute_direction(name, hr, bc, layer=layer, position=-2, model=lm.name)
