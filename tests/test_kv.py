import torch

from refusal_atlas import hooks
from refusal_atlas.activations import extract_activations
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.generation import greedy_generate, stop_token_ids
from refusal_atlas.kv import full_attention_only, prefill_shared_prefix, row_tokens

PROMPTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and a sea.",
           "What is the capital of France?"]


def _unit(d: int, seed: int) -> torch.Tensor:
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def test_shared_prefix_generation_is_token_identical(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    batch = fmt.batch(PROMPTS)
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    shared = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
    plain = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop,
                            share_prefix=False)
    assert shared == plain


def test_shared_prefix_with_per_row_steering(qwen_tiny):
    """Rows steered differently share the prefix only within their group; each row still
    gets what it gets without sharing."""
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    stop = stop_token_ids(qwen_tiny.model, qwen_tiny.tokenizer)
    d = _unit(qwen_tiny.d_model, 3)
    vectors = torch.stack([d * 8, torch.zeros_like(d), d * 8, -d * 8])
    with hooks.add_to_resid_pre(qwen_tiny.model, 1, vectors):
        reps, group = hooks.row_groups(qwen_tiny.model, len(PROMPTS))
        shared = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop)
        plain = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop,
                                share_prefix=False)
    assert len(reps) == 3 and group[0] == group[2] != group[1]
    assert shared == plain
    unsteered = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop)
    assert shared[1] == unsteered[1] and shared[0] != unsteered[0]


def test_prefill_leaves_each_row_its_own_tokens(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    shared = prefill_shared_prefix(qwen_tiny.model, batch)
    rows = row_tokens(batch)
    assert shared is not None and shared.prefix_len >= 4
    assert all(r[:shared.prefix_len] == rows[0][:shared.prefix_len] for r in rows)
    own = [r[shared.prefix_len:] for r in rows]
    for i, tokens in enumerate(own):
        width = shared.input_ids.shape[1]
        assert shared.input_ids[i, width - len(tokens):].tolist() == tokens
        assert int(shared.attention_mask[i].sum()) == len(rows[i])
    assert shared.cache.get_seq_length() == shared.prefix_len
    # positions continue after the prefix, so every token keeps its unshared position
    assert int(shared.position_ids[0, -1]) == len(rows[0]) - 1


def test_nothing_to_share(qwen_tiny, tiny_model_dirs):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    assert prefill_shared_prefix(qwen_tiny.model, fmt.batch(PROMPTS[:1])) is None
    d = _unit(qwen_tiny.d_model, 4)
    every_row_differs = torch.stack([d * k for k in range(len(PROMPTS))])
    with hooks.add_to_resid_pre(qwen_tiny.model, 1, every_row_differs):
        assert prefill_shared_prefix(qwen_tiny.model, fmt.batch(PROMPTS)) is None


def test_sliding_window_models_do_not_share(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    shared = prefill_shared_prefix(tiny_lm.model, fmt.batch(PROMPTS))
    windowed = tiny_lm.model.config.model_type == "gemma2"
    assert full_attention_only(tiny_lm.model) is not windowed
    assert (shared is None) is windowed


def test_shared_prefix_activations_match(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    a = extract_activations(tiny_lm, fmt, PROMPTS, [1, 2], [-1, -2], batch_size=4)
    b = extract_activations(tiny_lm, fmt, PROMPTS, [1, 2], [-1, -2], batch_size=4,
                            share_prefix=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
