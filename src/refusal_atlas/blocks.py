"""Where a causal LM keeps its parts: the decoder blocks, the final norm, the module whose
input is ``resid_pre`` of a layer, and the sub-layers whose outputs a block adds to the
residual stream. :mod:`~.hooks` operates on what these find.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from .errors import UserError

__all__ = ["decoder_layers", "final_norm", "n_layers", "resid_pre_module",
           "sublayer_output_modules"]


def _find(model: nn.Module, paths: Sequence[str], kind: type) -> nn.Module | None:
    """The first attribute path that resolves to a module of type ``kind``."""
    for path in paths:
        module: Any = model
        for attr in path.split("."):
            module = getattr(module, attr, None)
            if module is None:
                break
        if isinstance(module, kind):
            return module
    return None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM, whatever its wrapper."""
    found = _find(model, ("model.layers", "model.model.layers", "transformer.h",
                          "gpt_neox.layers", "model.decoder.layers", "layers"), nn.ModuleList)
    if found is None:
        raise UserError(f"cannot find the decoder layers of {type(model).__name__}")
    return found


def final_norm(model: nn.Module) -> nn.Module:
    found = _find(model, ("model.norm", "model.model.norm", "transformer.ln_f",
                          "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm", "norm"),
                  nn.Module)
    if found is None:
        raise UserError(f"cannot find the final norm of {type(model).__name__}")
    return found


def n_layers(model: nn.Module) -> int:
    return len(decoder_layers(model))


def resid_pre_module(model: nn.Module, layer: int) -> nn.Module:
    """The module whose *input* is ``resid_pre`` of ``layer`` (0..n_layers)."""
    layers = decoder_layers(model)
    if not 0 <= layer <= len(layers):
        raise UserError(f"layer {layer} is out of range: this model has layers 0..{len(layers) - 1} "
                        f"(and {len(layers)} for the final residual stream)")
    return layers[layer] if layer < len(layers) else final_norm(model)


def sublayer_output_modules(block: nn.Module) -> list[nn.Module]:
    """Modules whose outputs are what a block adds to the residual stream.

    Gemma-2/3 and OLMo-2 normalise each sub-layer's output before the residual add
    (``post_attention_layernorm`` / ``post_feedforward_layernorm``), so their outputs are
    the contributions. Elsewhere (Llama, Qwen2, Mistral: where ``post_attention_layernorm``
    is the *pre*-MLP norm) the attention and MLP outputs are.
    """
    if hasattr(block, "post_feedforward_layernorm") and hasattr(block, "post_attention_layernorm"):
        return [block.post_attention_layernorm, block.post_feedforward_layernorm]
    attn = next((getattr(block, n) for n in ("self_attn", "attn", "attention") if hasattr(block, n)),
                None)
    mlp = next((getattr(block, n) for n in ("mlp", "feed_forward") if hasattr(block, n)), None)
    if attn is None or mlp is None:
        raise UserError(f"cannot find attention and MLP sub-layers in {type(block).__name__}")
    return [attn, mlp]
