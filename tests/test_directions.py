import pytest
import torch

from refusal_atlas.directions import (
    compute_direction,
    diff_in_means,
    layer_scan,
    load_directions,
    save_directions,
)
from refusal_atlas.errors import UserError


def test_diff_in_means_is_unit_and_reports_raw_norm():
    hr = torch.tensor([[2.0, 0.0], [4.0, 0.0]])
    bc = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    unit, norm = diff_in_means(hr, bc)
    expected = torch.tensor([3.0, -1.0])
    assert norm == pytest.approx(float(expected.norm()))
    torch.testing.assert_close(unit, expected / expected.norm())


def test_manifest_has_the_method_fields(tmp_path):
    g = torch.Generator().manual_seed(0)
    hr = torch.randn(8, 16, generator=g) + 3
    bc = torch.randn(6, 16, generator=g)
    d = compute_direction("S", hr, bc, layer=5, position=-2, model="m",
                          hr_ids=[f"h{i}" for i in range(8)], bc_ids=[f"b{i}" for i in range(6)])
    m = d.manifest()
    for key in ("model", "layer", "position", "n_hr", "n_bc", "hr_ids", "bc_ids", "hr_proj_mean",
                "bc_proj_mean", "raw_norm", "projection_gap", "d_model", "direction_sha256"):
        assert key in m
    assert m["hr_proj_mean"] == pytest.approx(float((hr @ d.vector).mean()), rel=1e-5)
    assert m["projection_gap"] > 0


def test_save_and_load_round_trip(tmp_path):
    from safetensors.torch import load_file

    g = torch.Generator().manual_seed(1)
    dirs = {name: compute_direction(name, torch.randn(5, 12, generator=g) + i,
                                    torch.randn(5, 12, generator=g), layer=3, position=-2,
                                    model="m", hr_ids=["a"], bc_ids=["b"])
            for i, name in enumerate(["A", "B", "C"])}
    save_directions(dirs, tmp_path)
    raw = load_file(str(tmp_path / "directions.safetensors"))
    assert set(raw) == {"A", "B", "C"} and all(t.dtype == torch.float32 and t.shape == (12,)
                                                 for t in raw.values())
    back = load_directions(tmp_path)
    assert list(back) == ["A", "B", "C"]
    for name in dirs:
        torch.testing.assert_close(back[name].vector, dirs[name].vector, rtol=0, atol=0)
        assert back[name].manifest() == dirs[name].manifest()


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


def test_direction_errors():
    with pytest.raises(UserError):
        diff_in_means(torch.zeros(0, 4), torch.zeros(3, 4))
    with pytest.raises(UserError, match="identical"):
        diff_in_means(torch.ones(2, 4), torch.ones(3, 4))


def test_refusal_first_tokens_cover_most_refusals(qwen_tiny):
    from refusal_atlas.directions import refusal_first_tokens

    tok = qwen_tiny.tokenizer
    responses = ["I'm sorry, no."] * 6 + ["As an AI, no."] * 3 + ["Sure thing."]
    tokens = refusal_first_tokens(tok, responses, coverage=0.8)
    first = lambda text: tok(text, add_special_tokens=False)["input_ids"][0]  # noqa: E731
    assert tokens == [first("I'm sorry, no."), first("As an AI, no.")]


def test_refusal_log_odds_matches_probabilities():
    from refusal_atlas.directions import refusal_log_odds

    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    assert float(refusal_log_odds(logits, [0, 1])) == pytest.approx(0.0, abs=1e-5)  # p = 0.5
    assert float(refusal_log_odds(logits, [2, 1])) == pytest.approx(float(torch.log(torch.tensor(0.8 / 0.2))), abs=1e-4)


def test_induce_score_rewards_a_direction_that_pushes_the_refusal_token(qwen_tiny):
    from refusal_atlas.chat import ChatFormatter
    from refusal_atlas.directions import induce_scores

    batch = ChatFormatter(qwen_tiny.tokenizer).batch(["How do I bake bread?", "Tell me a story."])
    token = 42
    unembed = qwen_tiny.model.get_output_embeddings().weight[token].detach()
    push = unembed / unembed.norm()
    n = qwen_tiny.n_layers
    scores = induce_scores(qwen_tiny.model, batch, {n: (push, 20.0)}, [token])
    against = induce_scores(qwen_tiny.model, batch, {n: (-push, 20.0)}, [token])
    zero = induce_scores(qwen_tiny.model, batch, {n: (push, 0.0)}, [token])
    assert scores[n] > 1.0 and against[n] < -1.0 and zero[n] == pytest.approx(0.0, abs=1e-6)
