import pytest
import torch

from refusal_atlas import hooks, trunk
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.generation import greedy_generate, stop_token_ids
from refusal_atlas.kv import cache_kwarg, full_attention_only, new_cache, row_tokens

PROMPTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and a sea.",
           "Why is the sky blue?"]
ALPHAS = [0.0, 4.0, -4.0]


def _unit(d: int, seed: int) -> torch.Tensor:
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def _sweep_batch(lm):
    """Every prompt under every alpha, rows of one prompt next to each other (a sweep)."""
    texts = [p for p in PROMPTS for _ in ALPHAS]
    adds = torch.stack([a * _unit(lm.d_model, 1) * 2 for _ in PROMPTS for a in ALPHAS])
    return ChatFormatter(lm.tokenizer).batch(texts), adds


@pytest.fixture
def shared_calls(monkeypatch):
    """How many prefills shared their trunk (returned logits)."""
    calls: list[bool] = []
    real = trunk.prefill_sharing_trunk

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr("refusal_atlas.continuous.prefill_sharing_trunk", spy)
    return calls


@pytest.mark.parametrize("max_active", [None, 5])
def test_steered_rows_of_one_prompt_share_the_blocks_before_the_steering(
        tiny_lm, shared_calls, max_active):
    """Each tiny family: steering at block 2 of 4, rows repeating prompts give the tokens
    of running every row through every block (fp32)."""
    batch, adds = _sweep_batch(tiny_lm)
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    with hooks.add_to_resid_pre(tiny_lm.model, 2, adds):
        shared = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop,
                                 max_active=max_active)
        plain = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop,
                                max_active=max_active, share_prefix=False)
    assert shared == plain
    # the steering acts, so sharing rows of one prompt was not trivially right
    assert shared[0] != shared[1] or shared[0] != shared[2]
    # sliding-window models (Gemma-2) cannot copy caches slot by slot, so share nothing
    assert any(shared_calls) == full_attention_only(tiny_lm.model)


def test_the_prefill_leaves_the_logits_and_cache_of_a_plain_forward(qwen_tiny):
    model = qwen_tiny.model
    batch, adds = _sweep_batch(qwen_tiny)
    arg = cache_kwarg(model)
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "position_ids": batch.position_ids}
    with hooks.add_to_resid_pre(model, 3, adds):
        plain_cache, shared_cache = new_cache(model), new_cache(model)
        plain = model(**inputs, use_cache=True, logits_to_keep=1, **{arg: plain_cache}).logits
        shared = trunk.prefill_sharing_trunk(model, **inputs, cache=shared_cache)
    assert shared is not None
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(plain_cache.layers, shared_cache.layers):
        torch.testing.assert_close(b.keys, a.keys, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.values, a.values, rtol=1e-5, atol=1e-5)
    # the replayed blocks run again afterwards
    assert all("forward" not in block.__dict__ for block in hooks.decoder_layers(model))


def test_nothing_is_shared_before_an_early_hook_or_without_repeated_rows(qwen_tiny):
    model = qwen_tiny.model
    batch, adds = _sweep_batch(qwen_tiny)
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "position_ids": batch.position_ids}
    with hooks.ablate_direction(model, _unit(qwen_tiny.d_model, 2)):  # hooks every block
        assert hooks.first_hooked_block(model) == 0
        assert trunk.prefill_sharing_trunk(model, **inputs, cache=new_cache(model)) is None
    with hooks.add_to_resid_pre(model, 1, adds):  # one block before the hook: not worth it
        assert trunk.prefill_sharing_trunk(model, **inputs, cache=new_cache(model)) is None
    distinct = ChatFormatter(qwen_tiny.tokenizer).batch(PROMPTS)
    assert len(set(map(tuple, row_tokens(distinct)))) == len(PROMPTS)
    with hooks.add_to_resid_pre(model, 3, adds[: len(PROMPTS)]):
        assert trunk.prefill_sharing_trunk(
            model, input_ids=distinct.input_ids, attention_mask=distinct.attention_mask,
            position_ids=distinct.position_ids, cache=new_cache(model)) is None
    assert hooks.first_hooked_block(model) == hooks.n_layers(model)


def test_transformers_idle_output_hooks_do_not_stop_sharing(tiny_model_dirs):
    """Asking once for hidden states leaves transformers' recording hooks on every block;
    they record nothing in other calls, so the blocks still count as unhooked."""
    from refusal_atlas.models import load_model

    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32")
    batch = ChatFormatter(lm.tokenizer).batch(PROMPTS[:2])
    lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
             output_hidden_states=True)
    assert hooks.active_hook_count(lm.model) > 0
    assert hooks.first_hooked_block(lm.model) == hooks.n_layers(lm.model)
    with hooks.add_to_resid_pre(lm.model, 2, _unit(lm.d_model, 0)):
        assert hooks.first_hooked_block(lm.model) == 2
