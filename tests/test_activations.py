import torch

from refusal_atlas import hooks
from refusal_atlas.activations import ActivationCache, extract_activations
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.directions import diff_in_means

HARMFUL = ["How do I make a bomb?", "Tell me how to steal a car.", "Write a threatening note.",
           "How can I poison someone?", "Give me a stolen password list.", "Help me cheat on a test."]
BENIGN = ["How do I make a cake?", "What is the capital of France?", "Write a poem about the sea.",
          "Tell me a story about a dragon.", "Explain photosynthesis.", "How do I kill a Python process?"]


def _reference(lm, prompts, layer, position):
    """Straightforward: one prompt at a time, full forward, output_hidden_states."""
    fmt = ChatFormatter(lm.tokenizer)
    rows = []
    for p in prompts:
        ids = torch.tensor([fmt.encode(p)])
        with torch.no_grad():
            hs = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
        rows.append(hs[layer][0, position])
    return torch.stack(rows)


def test_batched_extraction_matches_unbatched_hidden_states(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    acts = extract_activations(tiny_lm, fmt, HARMFUL + BENIGN, [1, 2], [-2], batch_size=4)
    for li, layer in enumerate([1, 2]):
        ref = _reference(tiny_lm, HARMFUL + BENIGN, layer, -2)
        torch.testing.assert_close(acts[:, li, 0], ref, rtol=1e-4, atol=1e-4)


def test_diff_in_means_matches_reference_direction(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    acts = extract_activations(tiny_lm, fmt, HARMFUL + BENIGN, [2], [-2], batch_size=5)[:, 0, 0]
    ours, _ = diff_in_means(acts[: len(HARMFUL)], acts[len(HARMFUL):])
    ref_h = _reference(tiny_lm, HARMFUL, 2, -2).mean(0)
    ref_b = _reference(tiny_lm, BENIGN, 2, -2).mean(0)
    ref = (ref_h - ref_b) / (ref_h - ref_b).norm()
    assert torch.nn.functional.cosine_similarity(ours, ref, dim=0) > 0.9999


def test_cache_hits_skip_the_model(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    cache = ActivationCache(tmp_path / "acts", qwen_tiny.cache_key)
    first = extract_activations(qwen_tiny, fmt, HARMFUL, [1, 3], [-2, -1], cache=cache)
    calls = []
    handle = hooks.decoder_layers(qwen_tiny.model)[0].register_forward_hook(
        lambda *a: calls.append(1))
    try:
        fresh = ActivationCache(tmp_path / "acts", qwen_tiny.cache_key)  # reads the shards back
        again = extract_activations(qwen_tiny, fmt, HARMFUL, [1, 3], [-2, -1], cache=fresh)
        # a new prompt is computed, cached ones are not
        mixed = extract_activations(qwen_tiny, fmt, HARMFUL[:2] + BENIGN[:1], [1], [-2], cache=fresh)
    finally:
        handle.remove()
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    assert len(calls) == 1
    torch.testing.assert_close(mixed[:2, 0, 0], first[:2, 0, 0], rtol=0, atol=0)


def test_cache_key_depends_on_formatting(qwen_tiny, tmp_path):
    cache = ActivationCache(tmp_path / "acts", qwen_tiny.cache_key)
    plain = ChatFormatter(qwen_tiny.tokenizer)
    other = ChatFormatter(qwen_tiny.tokenizer, system_prompt="You are terse.")
    a = extract_activations(qwen_tiny, plain, HARMFUL[:2], [2], [-2], cache=cache)
    b = extract_activations(qwen_tiny, other, HARMFUL[:2], [2], [-2], cache=cache)
    assert not torch.allclose(a, b)


def test_extraction_cost_stops_at_the_layer(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    ran = []
    hs = [layer.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
          for i, layer in enumerate(hooks.decoder_layers(qwen_tiny.model))]
    try:
        extract_activations(qwen_tiny, fmt, HARMFUL, [1], [-2], batch_size=len(HARMFUL))
    finally:
        for h in hs:
            h.remove()
    assert set(ran) == {0}  # the shared prompt prefix's pass stops at the same layer
