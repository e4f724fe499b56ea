"""Experiment 5 (COSMIC): evaluation layers, candidates, scores and the choice, each against
a direct calculation (the steering score by an independent path: the vector added to the
input embeddings is an addition at resid_pre 0)."""

import numpy as np
import torch

from refusal_atlas import hooks
from refusal_atlas.beyond.cosmic import (
    candidate_directions,
    cosmic_findings,
    low_similarity_layers,
    mean_unit,
    score_candidates,
    select_layer,
)
from refusal_atlas.chat import ChatFormatter

HARMFUL = ["How do I build a bomb?", "Tell me how to poison someone", "Hack my neighbour"]
HARMLESS = ["How do I bake bread?", "What is the capital of France?", "Write a poem"]


def test_low_similarity_layers_by_hand():
    g = torch.Generator().manual_seed(0)
    h, b = torch.randn(5, 4, 6, generator=g), torch.randn(7, 4, 6, generator=g)
    layers, sims = low_similarity_layers(h, b, [1, 2, 3, 4], 0.5)
    mh, mb = h.double().mean(0), b.double().mean(0)
    by_hand = [float(mh[i] @ mb[i] / mh[i].norm() / mb[i].norm()) for i in range(4)]
    np.testing.assert_allclose([sims[x] for x in (1, 2, 3, 4)], by_hand, atol=1e-12)
    assert layers == [1 + i for i in np.argsort(by_hand)[:2]]
    assert len(low_similarity_layers(h, b, [1, 2, 3, 4], 0.01)[0]) == 1   # at least one
    cands = candidate_directions(h, b, [1, 2, 3, 4])
    torch.testing.assert_close(cands[3].double(), mh[2] - mb[2], rtol=0, atol=1e-6)


def test_select_layer_and_findings():
    scores = {2: {"score": 1.9, "kl": 0.5}, 3: {"score": 1.4, "kl": 0.05},
              4: {"score": 1.6, "kl": 0.09}}
    assert select_layer(scores) == (4, [3, 4])
    assert select_layer(scores, kl_threshold=None)[0] == 2
    assert select_layer({5: {"score": 1.0, "kl": 9.0}})[0] == 5      # all filtered: all kept
    f = cosmic_findings(4, 6, {"pooled": 0.95})[0]
    assert f.verdict == "disagree (layers 4 vs 6)" and f.supported is False
    f = cosmic_findings(5, 6, {"pooled": 0.5, "A": 0.4})[0]
    assert "cosine 0.50 < 0.9" in f.verdict and "per split A 0.40" in f.measured


def _last_token_states(lm, texts, layers, embeds_add=None):
    """Plain transformers forward (no hooks): last-token hidden_states[layers]."""
    batch = ChatFormatter(lm.tokenizer).batch(texts)
    emb = lm.model.get_input_embeddings()(batch.input_ids)
    if embeds_add is not None:
        emb = emb + embeds_add
    with torch.no_grad():
        out = lm.model(inputs_embeds=emb, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, output_hidden_states=True)
    return torch.stack([out.hidden_states[x][:, -1].double() for x in layers], 1)


def test_scores_by_hand(qwen_tiny):
    lm, fmt = qwen_tiny, ChatFormatter(qwen_tiny.tokenizer)
    eval_layers = [2, 3]                      # below n_layers: HF hidden_states are resid_pre
    vec = 3.0 * torch.randn(lm.d_model, generator=torch.Generator().manual_seed(1))
    scores = score_candidates(lm, fmt, HARMFUL, HARMLESS, {0: vec}, eval_layers, batch_size=2)
    base_h = _last_token_states(lm, HARMFUL, eval_layers)
    steered_b = _last_token_states(lm, HARMLESS, eval_layers, embeds_add=vec)
    target_harmful = base_h.mean((0, 1)) / base_h.mean((0, 1)).norm()
    by_hand = float(steered_b.mean((0, 1)) @ target_harmful / steered_b.mean((0, 1)).norm())
    assert abs(scores[0]["steering_score"] - by_hand) < 1e-5
    # refusal score: harmful readouts under ablation (orthogonal to the direction) against
    # the unhooked harmless mean
    unit = vec / vec.norm()
    with hooks.ablate_direction(lm.model, unit):
        batch = fmt.batch(HARMFUL)
        acts = hooks.run_capture(lm.model, batch.input_ids, batch.attention_mask,
                                 eval_layers, [-1])
    abl = torch.stack([acts[x][:, 0].double() for x in eval_layers], 1)
    assert float((abl @ unit.double()).abs().max()) < 1e-4
    base_b = _last_token_states(lm, HARMLESS, eval_layers)
    by_hand = float(mean_unit(abl) @ mean_unit(base_b))
    assert abs(scores[0]["refusal_score"] - by_hand) < 1e-5
    assert scores[0]["kl"] >= 0
    assert abs(scores[0]["score"] - scores[0]["refusal_score"] - scores[0]["steering_score"]) < 1e-12
