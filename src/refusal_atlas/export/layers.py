"""Which layers a steering vector acts at, and how other tools number them.

Our convention: a direction of layer ``L`` acts at ``resid_pre`` of Hugging Face block
``L`` (the input of ``model.layers[L]`` = ``hidden_states[L]``). llama.cpp's control
vectors and the steering-vectors library both add to a block's *output*; the output of
block ``L - 1`` is the input of block ``L``, so ``resid_pre L`` is their index ``L - 1``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import UserError


def block_output_index(resid_pre_layer: int) -> int:
    """The block whose output is ``resid_pre`` of ``resid_pre_layer`` (llama.cpp's and
    steering-vectors' index).

    Args:
        resid_pre_layer: our layer (Hugging Face block index of the input).

    Example:
        >>> block_output_index(12)
        11
    """
    return int(resid_pre_layer) - 1


def resid_pre_layer(block_output: int) -> int:
    """Our ``resid_pre`` layer for a vector added to the output of block ``block_output``.

    Example:
        >>> resid_pre_layer(11)
        12
    """
    return int(block_output) + 1


def parse_layer_range(text: str | None) -> list[int] | None:
    """``"A-B"`` (inclusive), ``"A"`` or ``"A,B,C"`` -> a sorted list of layers; None stays None.

    Example:
        >>> parse_layer_range("10-12"), parse_layer_range("3,1")
        ([10, 11, 12], [1, 3])
    """
    if text is None:
        return None
    layers: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                layers.update(range(lo_i, hi_i + 1))
            else:
                layers.add(int(part))
    except ValueError:
        raise UserError(f"--layers {text!r} is not a layer range like 10-14 or a list like "
                        "10,12") from None
    if not layers:
        raise UserError("--layers is empty; give a range like 10-14")
    return sorted(layers)


def check_layers(layers: Sequence[int], n_layers: int, *, lowest: int, tool: str) -> list[int]:
    """``layers`` (resid_pre) checked against what ``tool`` can express on a model of
    ``n_layers`` blocks: ``lowest`` .. ``n_layers``; anything else is one line.

    Example:
        >>> check_layers([2, 3], 4, lowest=1, tool="steering-vectors")
        [2, 3]
    """
    bad = [int(x) for x in layers if not lowest <= int(x) <= n_layers]
    if bad:
        raise UserError(f"layer {bad[0]} is out of range for {tool}: on this {n_layers}-layer "
                        f"model it can steer resid_pre layers {lowest}..{n_layers}")
    return [int(x) for x in layers]


def layer_vectors(vector: torch.Tensor, layers: Sequence[int], alpha: float) -> dict[int, torch.Tensor]:
    """``{resid_pre layer: alpha * vector}`` in float32, one entry per layer.

    Example:
        >>> layer_vectors(torch.ones(2), [3, 4], 2.0)[4].tolist()
        [2.0, 2.0]
    """
    scaled = (float(alpha) * vector.detach().float().cpu()).contiguous()
    return {int(layer): scaled.clone() for layer in layers}
