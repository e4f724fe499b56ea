"""SAE training corpus on a tiny Qwen2 model: positions, prefix dropping, oversampling, cap."""

from __future__ import annotations

import json

import pytest
import torch

from refusal_atlas.chat import ChatFormatter, pad_left
from refusal_atlas.errors import UserError
from refusal_atlas.hooks import run_capture
from refusal_atlas.sae.corpus import (
    SOURCES,
    CorpusConfig,
    CorpusPrompt,
    collect_corpus,
    is_heldout,
    read_corpus_files,
    shared_prefix_length,
)

LAYER = 2
PROMPTS = [
    CorpusPrompt("a", "How do I bake bread?", "Sure, here is how."),
    CorpusPrompt("b", "Tell me a story about a dragon.", "I'm sorry, but I can't."),
    CorpusPrompt("c", "What is the capital of France?", None),
    CorpusPrompt("d", "Explain photosynthesis.", "As an AI, I cannot."),
    CorpusPrompt("e", "Write a poem about the sea.", "The sea is a"),
    CorpusPrompt("f", "How do I kill a Python process?", "Use kill."),
]


@pytest.fixture
def fmt(qwen_tiny):
    return ChatFormatter(qwen_tiny.tokenizer, max_tokens=128)


def _capture(lm, ids: list[int]) -> torch.Tensor:
    batch = pad_left([ids], 0)
    return run_capture(lm.model, batch.input_ids, batch.attention_mask, [LAYER])[LAYER][0]


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3, 4, 5], [1, 2, 3, 9, 9, 9], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[1, 2, 3, 7, 8], [1, 2, 4, 7, 8]]) == 2
    assert shared_prefix_length([[1, 2, 3]]) == 0
    assert shared_prefix_length([[5, 6, 7], [8, 6, 7]]) == 0


def test_heldout_choice_is_deterministic_and_order_free():
    ids = [f"id{i}" for i in range(2000)]
    chosen = [i for i in ids if is_heldout(i, 0.1, 0)]
    assert 150 < len(chosen) < 250
    assert chosen == [i for i in reversed(ids) if is_heldout(i, 0.1, 0)][::-1]
    assert chosen != [i for i in ids if is_heldout(i, 0.1, 1)]
    assert not any(is_heldout(i, 0.0, 0) for i in ids)


def test_rows_positions_prefix_and_oversampling(qwen_tiny, fmt):
    cfg = CorpusConfig(layer=LAYER, position=-2, oversample=3, holdout=0.0, max_rows=100_000,
                       batch_size=4)
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, cfg)
    encoded = [fmt.encode(p.text) for p in PROMPTS]
    prefix = shared_prefix_length(encoded)
    assert prefix >= 10  # the template's system prompt + "<|im_start|>user\n"
    assert corpus.stats["shared_prefix_tokens"] == prefix
    tok = qwen_tiny.tokenizer
    n_resp = sum(len(tok(p.response, add_special_tokens=False)["input_ids"])
                 for p in PROMPTS if p.response)
    counts = corpus.source_counts()
    assert counts["position"] == 3 * len(PROMPTS)
    assert counts["prompt"] == sum(len(e) for e in encoded) - (len(PROMPTS) - 1) * prefix
    assert counts["response"] == n_resp
    assert counts["file"] == 0
    assert corpus.stats["prefix_rows_dropped"] == (len(PROMPTS) - 1) * prefix
    assert corpus.train.shape == (sum(counts.values()), qwen_tiny.d_model)
    assert corpus.eval_all is None and corpus.eval_position is None

    # the position rows are resid_pre of LAYER at -2 of each formatted prompt
    for i, (p, ids) in enumerate(zip(PROMPTS, encoded)):
        direct = _capture(qwen_tiny, ids)
        assert torch.allclose(corpus.position_rows[i].float(), direct[-2].float(), atol=1e-4)
    # the oversampled block repeats them, in prompt order
    pos_rows = corpus.train[corpus.source == SOURCES.index("position")]
    assert torch.equal(pos_rows[:len(PROMPTS)], corpus.position_rows)
    assert torch.equal(pos_rows[len(PROMPTS):2 * len(PROMPTS)], corpus.position_rows)
    # a prompt's kept rows are exactly the non-prefix positions of its capture
    prompt_rows = corpus.train[corpus.source == SOURCES.index("prompt")]
    c = encoded[2]  # prompt "c" has no response: its sequence is the prompt alone
    direct = _capture(qwen_tiny, c)[prefix:]
    hits = [(prompt_rows - row).abs().amax(dim=1).min() < 1e-4 for row in direct]
    assert all(hits)


def test_cap_reserves_the_position_block_then_fills_with_sequences(qwen_tiny, fmt):
    cfg = CorpusConfig(layer=LAYER, oversample=3, holdout=0.0, max_rows=50, batch_size=8)
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, cfg)
    counts = corpus.source_counts()
    assert corpus.train.shape[0] == 50
    assert counts["position"] == 18
    assert counts["prompt"] + counts["response"] == 32
    # a cap below twice the position block lowers the oversampling (never below 1)
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(
        layer=LAYER, oversample=8, holdout=0.0, max_rows=20, batch_size=8))
    assert corpus.stats["oversample"] == 1 and corpus.source_counts()["position"] == 6
    assert corpus.train.shape[0] == 20
    # responses can be left out
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(
        layer=LAYER, oversample=1, holdout=0.0, include_responses=False))
    assert corpus.source_counts()["response"] == 0


def test_holdout_keeps_heldout_prompts_out_of_training(qwen_tiny, fmt):
    cfg = CorpusConfig(layer=LAYER, oversample=2, holdout=0.5, seed=3, batch_size=8)
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, cfg)
    held = [p.id for p in PROMPTS if is_heldout(p.id, 0.5, 3)]
    assert corpus.heldout_ids == held and 0 < len(held) < len(PROMPTS)
    assert corpus.eval_position.shape[0] == len(held)
    assert corpus.source_counts()["position"] == 2 * (len(PROMPTS) - len(held))
    assert corpus.position_rows.shape[0] == len(PROMPTS)
    assert corpus.eval_all is not None and corpus.eval_all.shape[0] > 0
    held_pos = corpus.eval_position.float()
    train = corpus.train.float()
    for row in held_pos:  # no held-out position row appears among the training rows
        assert (train - row).abs().amax(dim=1).min() > 1e-6


def test_text_files(qwen_tiny, fmt, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    jl = tmp_path / "docs.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in [{"text": "hello there"},
                                                    {"prompt": "a question", "response": "yes"}]))
    docs = read_corpus_files([txt, jl])
    assert len(docs) == 3 and docs[2] == "a question\nyes"
    cfg = CorpusConfig(layer=LAYER, oversample=1, holdout=0.0, files=[str(txt), str(jl)],
                       chunk_tokens=16, batch_size=8)
    corpus = collect_corpus(qwen_tiny, fmt, PROMPTS, cfg)
    n_tokens = sum(len(qwen_tiny.tokenizer(d)["input_ids"]) for d in docs)
    assert corpus.source_counts()["file"] == n_tokens
    assert corpus.stats["n_file_chunks"] >= 2
    # a corpus of files alone works too
    only = collect_corpus(qwen_tiny, fmt, [], cfg)
    assert only.source_counts() == {"prompt": 0, "response": 0, "file": n_tokens, "position": 0}
    with pytest.raises(UserError, match="not found"):
        collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(layer=LAYER, files=["/no/such.txt"]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\n')
    with pytest.raises(UserError, match="no 'text'"):
        read_corpus_files([bad])


def test_config_errors(qwen_tiny, fmt):
    with pytest.raises(UserError, match="out of range"):
        collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(layer=99))
    with pytest.raises(UserError, match="negative"):
        collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(layer=1, position=0))
    with pytest.raises(UserError, match="unique"):
        collect_corpus(qwen_tiny, fmt, PROMPTS + PROMPTS[:1], CorpusConfig(layer=1))
    with pytest.raises(UserError, match="empty"):
        collect_corpus(qwen_tiny, fmt, [], CorpusConfig(layer=1))


def test_batches_sharing_the_template_prefix_give_the_same_rows(qwen_tiny, fmt):
    """Batches whose rows all drop the template prefix compute it once; the rows match
    one-prompt batches (where nothing is shared)."""
    cfg = dict(layer=LAYER, position=-2, oversample=1, holdout=0.0, max_rows=100_000)
    shared = collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(batch_size=3, **cfg))
    alone = collect_corpus(qwen_tiny, fmt, PROMPTS, CorpusConfig(batch_size=1, **cfg))
    assert torch.equal(shared.source, alone.source)
    torch.testing.assert_close(shared.train.float(), alone.train.float(), rtol=1e-4, atol=1e-4)
