import pytest
import torch

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.layer_scan import (
    first_token_log_odds,
    induce_scores,
    layer_scan,
    refusal_first_tokens,
    refusal_log_odds,
)


def test_layer_scan_finds_where_the_signal_appears():
    g = torch.Generator().manual_seed(0)
    n, layers, d = 200, 8, 32
    hr = torch.randn(n, layers, d, generator=g)
    bc = torch.randn(n, layers, d, generator=g)
    signal = torch.zeros(d)
    signal[0] = 1.0
    for layer in range(3, layers):  # separation appears at layer 3 and stays
        hr[:, layer] += 4.0 * signal
    scan = layer_scan(hr, bc, list(range(layers)), n_model_layers=layers, max_depth=1.0)
    assert scan.chosen_layer == 3
    assert scan.separation[3] > 2 and scan.separation[1] < 1.5
    assert scan.accuracy[5] > 0.9


def test_refusal_first_tokens_cover_most_refusals(qwen_tiny):
    tok = qwen_tiny.tokenizer
    responses = ["I'm sorry, no."] * 6 + ["As an AI, no."] * 3 + ["Sure thing."]
    tokens = refusal_first_tokens(tok, responses, coverage=0.8)
    first = lambda text: tok(text, add_special_tokens=False)["input_ids"][0]  # noqa: E731
    assert tokens == [first("I'm sorry, no."), first("As an AI, no.")]


def test_refusal_log_odds_matches_probabilities():
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    assert float(refusal_log_odds(logits, [0, 1])) == pytest.approx(0.0, abs=1e-5)  # p = 0.5
    assert float(refusal_log_odds(logits, [2, 1])) == pytest.approx(float(torch.log(torch.tensor(0.8 / 0.2))), abs=1e-4)


def test_induce_score_rewards_a_direction_that_pushes_the_refusal_token(qwen_tiny):
    batch = ChatFormatter(qwen_tiny.tokenizer).batch(["How do I bake bread?", "Tell me a story."])
    token = 42
    unembed = qwen_tiny.model.get_output_embeddings().weight[token].detach()
    push = unembed / unembed.norm()
    n = qwen_tiny.n_layers
    scores = induce_scores(qwen_tiny.model, batch, {n: (push, 20.0)}, [token])
    against = induce_scores(qwen_tiny.model, batch, {n: (-push, 20.0)}, [token])
    zero = induce_scores(qwen_tiny.model, batch, {n: (push, 0.0)}, [token])
    assert scores[n] > 1.0 and against[n] < -1.0 and zero[n] == pytest.approx(0.0, abs=1e-6)


def test_first_token_log_odds_with_the_shared_prefix_computed_once(tiny_lm):
    from refusal_atlas.hooks import add_to_resid_pre

    batch = ChatFormatter(tiny_lm.tokenizer).batch(
        ["How do I bake bread?", "Tell me a story.", "Hi", "Name a colour, please."])
    unit = torch.ones(tiny_lm.d_model) / tiny_lm.d_model ** 0.5
    with add_to_resid_pre(tiny_lm.model, 1, unit, alpha=4.0):
        shared = first_token_log_odds(tiny_lm.model, batch, [42, 7])
        plain = first_token_log_odds(tiny_lm.model, batch, [42, 7], share_prefix=False)
    torch.testing.assert_close(shared, plain, rtol=1e-4, atol=1e-4)


def test_each_layers_pass_starting_from_the_baseline_gives_the_full_passes_scores(
        tiny_lm, monkeypatch):
    """The blocks before a candidate layer are replayed from the unhooked pass (fp32)."""
    from refusal_atlas import hooks

    batch = ChatFormatter(tiny_lm.tokenizer).batch(
        ["How do I bake bread?", "Tell me a story.", "Hi", "Name a colour, please."])
    g = torch.Generator().manual_seed(0)
    candidates = {}
    for layer in range(1, tiny_lm.n_layers):
        v = torch.randn(tiny_lm.d_model, generator=g)
        candidates[layer] = (v / v.norm(), 6.0)
    replayed: list[int] = []
    real = hooks.replay_blocks

    def spy(model, upto, hidden):
        replayed.append(upto)
        return real(model, upto, hidden)

    plain = induce_scores(tiny_lm.model, batch, candidates, [42, 7],
                          base=first_token_log_odds(tiny_lm.model, batch, [42, 7]))
    monkeypatch.setattr(hooks, "replay_blocks", spy)
    fast = induce_scores(tiny_lm.model, batch, candidates, [42, 7])
    assert replayed == list(candidates)
    assert fast == pytest.approx(plain, abs=1e-4)
    assert max(abs(s) for s in plain.values()) > 1e-3  # the steering moved the log-odds
