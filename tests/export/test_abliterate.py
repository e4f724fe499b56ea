"""Abliteration: projected weights generate what hook ablation generates, token for token
(fp32, tiny Llama and Qwen2); Gemma-2 is refused; the saved folder reloads."""

from __future__ import annotations

import copy
from contextlib import ExitStack

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.export import (
    abliterate_weights,
    check_abliteration_support,
    orthonormal_basis,
    save_abliterated,
)
from refusal_atlas.generation import generate
from refusal_atlas.hooks import ablate_direction
from refusal_atlas.models import LoadedModel, load_model

from .conftest import PROMPTS, random_direction


def _copy(lm) -> LoadedModel:
    return LoadedModel(model=copy.deepcopy(lm.model), tokenizer=lm.tokenizer, name=lm.name,
                       source=lm.source, fingerprint=lm.fingerprint, dtype=lm.dtype)


def _hook_ablated(lm, basis, prompts):
    with ExitStack() as stack:
        for row in basis:
            stack.enter_context(ablate_direction(lm.model, row))
        tokens = generate(lm, prompts, max_new_tokens=12).token_ids
        ids = lm.tokenizer(prompts[0])["input_ids"]
        logits = lm.model(input_ids=torch.tensor([ids])).logits
    return tokens, logits


def test_basis_is_orthonormal_and_refuses_dependent_sets():
    a, b = torch.randn(16), torch.randn(16)
    q = orthonormal_basis([a, b])
    assert torch.allclose(q @ q.T, torch.eye(2), atol=1e-6)
    with pytest.raises(UserError, match="linearly dependent"):
        orthonormal_basis([a, 2 * a])
    with pytest.raises(UserError, match="different sizes"):
        orthonormal_basis([a, torch.randn(8)])


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("k", [1, 2])
def test_weights_generate_what_hook_ablation_generates(family, k, tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs[family]), dtype="float32")
    # directions with a large component along what the model writes, so ablation matters
    vectors = [random_direction(lm, layer=2, seed=s).vector for s in range(k)]
    vectors[0] = lm.model.get_input_embeddings().weight[:50].mean(0)
    basis = orthonormal_basis(vectors)
    hooked_tokens, hooked_logits = _hook_ablated(lm, basis, PROMPTS)
    plain = generate(lm, PROMPTS, max_new_tokens=12).token_ids
    abl = _copy(lm)
    changed = abliterate_weights(abl.model, basis)
    assert changed["matrices"] == 1 + 2 * lm.n_layers
    assert changed["untied_lm_head"] == (family == "qwen2")
    tokens = generate(abl, PROMPTS, max_new_tokens=12).token_ids
    ids = lm.tokenizer(PROMPTS[0])["input_ids"]
    logits = abl.model(input_ids=torch.tensor([ids])).logits
    assert tokens == hooked_tokens
    assert torch.allclose(logits, hooked_logits, atol=1e-4)
    assert tokens != plain  # the ablation changes something
    # the residual stream no longer has a component along the span
    emb = abl.model.get_input_embeddings().weight
    assert (emb @ basis.T).abs().max() < 1e-4


def test_biases_are_projected_too(tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs["llama"]), dtype="float32")
    o_proj = lm.model.model.layers[0].self_attn.o_proj
    o_proj.bias = torch.nn.Parameter(torch.randn(lm.d_model))
    q = orthonormal_basis([torch.randn(lm.d_model)])
    assert abliterate_weights(lm.model, q)["biases"] == 1
    assert abs(float(q[0] @ o_proj.bias.detach())) < 1e-5


def test_gemma2_is_refused_in_one_line(tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs["gemma2"]), dtype="float32")
    with pytest.raises(UserError, match="norm sits between") as err:
        check_abliteration_support(lm.model)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(UserError):
        abliterate_weights(lm.model, orthonormal_basis([torch.randn(lm.d_model)]))


def test_wrong_width_is_one_line(qwen_tiny):
    with pytest.raises(UserError, match="do not fit"):
        abliterate_weights(_copy(qwen_tiny).model, orthonormal_basis([torch.randn(8)]))


def test_saved_folder_reloads_with_its_chat_template(tiny_model_dirs, tmp_path):
    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32")
    basis = orthonormal_basis([lm.model.get_input_embeddings().weight[:50].mean(0)])
    abliterate_weights(lm.model, basis)
    expected = generate(lm, PROMPTS, max_new_tokens=10).token_ids
    out = save_abliterated(lm, tmp_path / "abl", {"note": "test"})
    assert (out / "abliteration.json").is_file()
    assert any(out.glob("*.safetensors"))
    back = load_model(str(out), dtype="float32")
    assert back.tokenizer.chat_template == lm.tokenizer.chat_template
    assert not back.model.config.tie_word_embeddings
    assert generate(back, PROMPTS, max_new_tokens=10).token_ids == expected
    with pytest.raises(UserError, match="not an empty folder"):
        save_abliterated(lm, out, {})
