"""What an abliteration records: first-token KL, RR / ORR, agreement with hook ablation."""

from __future__ import annotations

import pytest
import torch
from conftest import REFUSE_MARK, MarkerJudge

from refusal_atlas.export import abliterate_model, first_token_kl, first_token_logprobs
from refusal_atlas.models import load_model
from refusal_atlas.sweeps.prompts import SweepPrompt

from .conftest import PROMPTS


def test_kl_is_zero_for_the_same_model_and_positive_otherwise():
    a = torch.log_softmax(torch.randn(4, 10), -1)
    b = torch.log_softmax(torch.randn(4, 10), -1)
    assert first_token_kl(a, a)["mean"] == 0.0
    kl = first_token_kl(a, b)
    assert kl["mean"] > 0 and kl["max"] >= kl["mean"] and kl["n_prompts"] == 4


def test_logprobs_do_not_depend_on_batching(qwen_tiny):
    one = first_token_logprobs(qwen_tiny, PROMPTS, batch_size=1)
    many = first_token_logprobs(qwen_tiny, PROMPTS, batch_size=4)
    assert one.shape == (4, qwen_tiny.model.config.vocab_size)
    assert torch.allclose(one, many, atol=1e-4)
    assert torch.allclose(one.exp().sum(-1), torch.ones(4), atol=1e-4)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_record(family, tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs[family]), dtype="float32")
    test = [SweepPrompt(str(i), f"{p} {REFUSE_MARK}" if i % 2 else p, bool(i % 2),
                        "HR" if i % 2 else "BC") for i, p in enumerate(PROMPTS)]
    vector = lm.model.get_input_embeddings().weight[:50].mean(0).detach()
    record = abliterate_model(lm, [vector], benign_prompts=PROMPTS, test_prompts=test,
                              judge=MarkerJudge(), max_new_tokens=6)
    assert record["basis_rank"] == 1
    assert record["kl_first_token"]["mean"] > 0
    assert record["hook_agreement"] == {**record["hook_agreement"], "identical_responses": 4,
                                        "n_prompts": 4}
    assert record["rates"]["rr"] == 1.0 and record["rates"]["orr"] == 0.0
    assert record["judge"] == "marker"


def test_without_test_prompts_only_kl(qwen_tiny):
    import copy

    from refusal_atlas.models import LoadedModel

    lm = LoadedModel(model=copy.deepcopy(qwen_tiny.model), tokenizer=qwen_tiny.tokenizer,
                     name="q", source="", fingerprint="", dtype=torch.float32)
    record = abliterate_model(lm, [torch.randn(lm.d_model)], benign_prompts=PROMPTS[:2])
    assert set(record) == {"basis_rank", "weights", "dtype", "kl_first_token"}
