"""Tail latents: removal of their decoder terms (exact, inside a sweep batch), the bank of
core / tail vectors, and the verdicts."""

import pytest
import torch
from sae.planted import D_SAE, planted_analysis  # tests/sae/planted.py

from refusal_atlas import hooks
from refusal_atlas.beyond.tail import LatentRemoval, removal_name, tail_bank, tail_findings
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.sae import SAE, SAEInfo
from refusal_atlas.sweeps import BASELINE, Condition
from refusal_atlas.sweeps.interventions import row_interventions


def _sae(d_in, arch="relu", layer=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    info = SAEInfo(d_in=d_in, d_sae=D_SAE, architecture=arch, k=4 if arch == "topk" else None,
                   hook_layer=layer, apply_b_dec_to_input=True)
    return SAE.from_tensors(info, {
        "W_enc": torch.randn(d_in, D_SAE, generator=g), "b_enc": torch.randn(D_SAE, generator=g),
        "W_dec": torch.randn(D_SAE, d_in, generator=g), "b_dec": torch.randn(d_in, generator=g)})


def _hidden(lm, layer=2):
    batch = ChatFormatter(lm.tokenizer).batch(["Hi", "Tell me a story about the sea."])
    return batch, hooks.run_capture(lm.model, batch.input_ids, batch.attention_mask, [layer])[layer]


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_removal_equals_manual_subtraction_and_keeps_the_error(qwen_tiny, arch):
    sae = _sae(qwen_tiny.d_model, arch)
    _, h = _hidden(qwen_tiny)
    tail = [2, 5, 7]
    f = sae.encode(h)
    assert (f[..., tail] > 0).any()  # the removal removes something
    manual = h - f[..., tail] @ sae.W_dec.detach()[tail]
    torch.testing.assert_close(LatentRemoval(sae, tail)(h), manual, rtol=0, atol=1e-5)
    # what stays = the other latents' terms + b_dec + the SAE's error term
    others = [j for j in range(D_SAE) if j not in tail]
    kept = f[..., others] @ sae.W_dec.detach()[others] + sae.b_dec.detach() + (h - sae(h))
    torch.testing.assert_close(LatentRemoval(sae, tail)(h), kept, rtol=0, atol=1e-4)


def test_removal_inside_a_sweep_batch_touches_only_its_rows(qwen_tiny):
    sae = _sae(qwen_tiny.d_model)
    analysis = planted_analysis()
    bank, _, _, with_tail = tail_bank(sae, analysis, ["A", "B"], layer=2)
    batch, h = _hidden(qwen_tiny)
    name = removal_name("A")
    conditions = [Condition("edit", name), BASELINE]
    assert Condition.from_id(conditions[0].id) == conditions[0] and conditions[0].id == f"edit/{name}"
    before = hooks.active_hook_count(qwen_tiny.model)
    with row_interventions(qwen_tiny.model, conditions, bank):
        got = hooks.run_capture(qwen_tiny.model, batch.input_ids, batch.attention_mask, [2])[2]
    assert hooks.active_hook_count(qwen_tiny.model) == before
    tail = analysis.tail_latents("A")
    manual = h[0] - sae.encode(h[0])[..., tail] @ sae.W_dec.detach()[tail]
    torch.testing.assert_close(got[0], manual, rtol=0, atol=1e-5)
    assert torch.equal(got[1], h[1])


def test_tail_bank_vectors():
    sae = _sae(8)
    analysis = planted_analysis()
    bank, described, warnings, with_tail = tail_bank(sae, analysis, ["A", "B", "C"], layer=2)
    assert with_tail == [s for s in "ABC" if analysis.tail_latents(s)]
    assert "sae_core" in bank and bank["sae_core"].meta["latents"] == analysis.core_latents()
    for split in with_tail:
        tail = analysis.tail_latents(split)
        steer = bank[f"sae_tail:{split}"]
        raw = sae.W_dec.detach()[tail].sum(0)
        torch.testing.assert_close(steer.vector, raw / raw.norm())  # unit: matched norms
        removal = bank[removal_name(split)]
        assert removal.edit.latents == tail and removal.layer == 2
        torch.testing.assert_close(removal.vector, raw)


def _entry(rr, styles, n=30):
    return {"rr": {"rate": rr, "k": int(rr * n), "n": n, "ci95": [rr, rr]},
            "harmful": {f"p{i}": i < rr * n for i in range(n)},
            "styles": {f"p{i}": s for i, s in enumerate(styles)}}


def test_tail_findings():
    table = {"baseline": _entry(0.5, ["SAFETY"] * 15),
             "vector/sae_core/a=2": _entry(0.5, ["SAFETY"] * 15),
             "vector/sae_tail:A/a=2": _entry(0.5, ["CAPABILITY"] * 15),
             "edit/sae_notail:A": _entry(0.5, ["SAFETY"] * 15)}
    out = tail_findings(table, ["A"], 2.0, n_perm=200)
    by = {f.subject: f for f in out}
    assert by["A (tail steering)"].verdict == "style without rate"
    assert by["A (tail removed)"].verdict == "neither moves"
    assert by["summary"].supported is False and "1 of 2" in by["summary"].verdict
    # a missing condition (no core) is not decidable, not a crash
    del table["vector/sae_core/a=2"]
    out = tail_findings(table, ["A"], 2.0, n_perm=200)
    assert out[0].supported is None and out[0].verdict == "not decidable"
