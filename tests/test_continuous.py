import pytest
import torch

from refusal_atlas import hooks
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.continuous import Decoder
from refusal_atlas.generation import PromptCapture, greedy_generate, stop_token_ids
from refusal_atlas.kv import (
    cache_kwarg,
    full_attention_only,
    gather_rows,
    join_rows,
    new_cache,
    trim_left,
)

PROMPTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and a sea.",
           "What is the capital of France?", "Name three colours.", "Why is the sky blue?",
           "Write a haiku about rain falling on a tin roof at night.", "2+2?"]


def _unit(d: int, seed: int) -> torch.Tensor:
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


@pytest.mark.parametrize("max_active", [1, 2, 3, 5])
def test_rows_joining_a_running_batch_get_what_they_get_alone(tiny_lm, max_active):
    """Every tiny family: decoding at most ``max_active`` rows, the rest joining as rows
    finish, gives each row the tokens of decoding every row at once (fp32)."""
    fmt = ChatFormatter(tiny_lm.tokenizer)
    batch = fmt.batch(PROMPTS)
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    at_once = greedy_generate(tiny_lm.model, batch, max_new_tokens=10, stop_ids=stop)
    joined = greedy_generate(tiny_lm.model, batch, max_new_tokens=10, stop_ids=stop,
                             max_active=max_active)
    assert joined == at_once


def test_rows_join_with_their_own_interventions(qwen_tiny):
    """Per-row steering and ablation follow each row into the batch it joins."""
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    stop = stop_token_ids(qwen_tiny.model, qwen_tiny.tokenizer)
    d = _unit(qwen_tiny.d_model, 3)
    adds = torch.stack([d * (8.0 * (i % 3 - 1)) for i in range(len(PROMPTS))])
    ablate = torch.stack([d if i % 2 else torch.zeros_like(d) for i in range(len(PROMPTS))])
    with hooks.add_to_resid_pre(qwen_tiny.model, 1, adds), \
            hooks.ablate_direction(qwen_tiny.model, ablate):
        at_once = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop)
        joined = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop,
                                 max_active=3)
        plain = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop,
                                max_active=3, share_prefix=False)
        # every per-row state holds all rows again after each call
        states = [s for s in hooks._ROW_STATE[qwen_tiny.model] if s.per_row]
        assert states and all(s.vectors.shape[0] == len(PROMPTS) for s in states)
    assert joined == at_once == plain
    # the interventions did act: unsteered rows differ where steered
    unsteered = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stop)
    assert unsteered != at_once


def test_the_batch_refills_and_never_exceeds_max_active(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    sizes: list[int] = []
    greedy_generate(qwen_tiny.model, batch, max_new_tokens=6, stop_ids=[], max_active=4,
                    on_step=sizes.append)
    assert max(sizes) == 4
    # 8 rows x 6 tokens, never more than 4 in flight: a second wave joined
    assert sum(sizes) == len(PROMPTS) * 6


def test_captured_prompt_activations_match_at_once(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    stop = stop_token_ids(qwen_tiny.model, qwen_tiny.tokenizer)
    a, b = PromptCapture([1, 2], (-1, -2)), PromptCapture([1, 2], (-1, -2))
    greedy_generate(qwen_tiny.model, batch, max_new_tokens=4, stop_ids=stop, capture=a)
    greedy_generate(qwen_tiny.model, batch, max_new_tokens=4, stop_ids=stop, capture=b,
                    max_active=3)
    assert set(a.acts) == set(b.acts) == {1, 2}
    for layer in a.acts:
        assert a.acts[layer].shape == (len(PROMPTS), 2, qwen_tiny.d_model)
        torch.testing.assert_close(a.acts[layer], b.acts[layer], rtol=1e-4, atol=1e-4)


def test_sliding_window_models_run_every_row_at_once(tiny_lm):
    decoder = Decoder(tiny_lm.model, [[1, 2, 3]] * 4, 0, max_new_tokens=2, stop_ids=[],
                      max_active=2, share_prefix=True, drop_finished=True)
    assert (decoder.max_active == 2) is full_attention_only(tiny_lm.model)


def test_join_pads_the_shorter_side_and_trim_drops_unused_slots(qwen_tiny):
    model = qwen_tiny.model
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    short, long_ = fmt.batch(PROMPTS[:1]), fmt.batch(PROMPTS[2:3])
    caches = []
    for b in (short, long_):
        cache = new_cache(model)
        model(input_ids=b.input_ids, attention_mask=b.attention_mask, use_cache=True,
              **{cache_kwarg(model): cache})
        caches.append(cache)
    n_short, n_long = short.input_ids.shape[1], long_.input_ids.shape[1]
    assert n_short < n_long
    cache, mask = join_rows(caches[0], short.attention_mask, caches[1], long_.attention_mask)
    assert mask.shape == (2, n_long) and int(mask[0].sum()) == n_short
    assert cache.get_seq_length() == n_long
    assert cache.layers[0].keys[0, :, : n_long - n_short].abs().sum() == 0
    # once the long row leaves, the slots only it used go
    cache.batch_select_indices(torch.tensor([0]))
    mask = trim_left(cache, mask[:1])
    assert mask.shape == (1, n_short) and cache.get_seq_length() == n_short
    copy = gather_rows(model, cache, torch.tensor([0, 0]))
    assert copy.layers[0].keys.shape[0] == 2 and cache.layers[0].keys.shape[0] == 1


def test_max_and_argmax_pick_the_same_token_on_ties():
    logits = torch.tensor([[0.0, 2.0, 2.0, 1.0], [3.0, 3.0, 3.0, 3.0]], dtype=torch.bfloat16)
    assert torch.equal(logits.max(-1).indices, logits.argmax(-1))


def test_a_capture_reused_for_another_batch_holds_that_batch(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    capture = PromptCapture([1], (-2,))
    for n in (len(PROMPTS), 3):
        greedy_generate(qwen_tiny.model, fmt.batch(PROMPTS[:n]), max_new_tokens=2, stop_ids=[],
                        capture=capture, max_active=2)
        assert capture.acts[1].shape[0] == n
