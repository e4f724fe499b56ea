from conftest import toy_suite

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.data.prompts import Prompt
from refusal_atlas.labels import assign_label, generate_responses


def test_assign_label():
    assert [assign_label(True, True), assign_label(True, False), assign_label(False, True),
            assign_label(False, False), assign_label(True, None)] == ["HR", "HC", "BR", "BC", None]


def test_generation_resumes_without_redoing_finished_prompts(qwen_tiny, tmp_path):
    from refusal_atlas import generation

    suite = toy_suite(n_split=3, n_benign=3)
    prompts = suite.all_prompts()
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    store = tmp_path / "responses.jsonl"
    first = generate_responses(qwen_tiny, fmt, prompts[:4], store, max_new_tokens=4, batch_size=2)
    assert len(first) == 4
    calls = []
    original = generation.greedy_generate

    def counting(model, batch, **kw):
        calls.append(batch.input_ids.shape[0])
        return original(model, batch, **kw)

    import refusal_atlas.sweeps.batches as batches_mod
    batches_mod.greedy_generate = counting
    try:
        full = generate_responses(qwen_tiny, fmt, prompts, store, max_new_tokens=4, batch_size=8)
    finally:
        batches_mod.greedy_generate = original
    assert sum(calls) == len(prompts) - 4
    assert set(full) == {p.id for p in prompts}
    assert {k: full[k]["response"] for k in first} == {k: v["response"] for k, v in first.items()}


def _responses_as_before(lm, fmt, prompts, max_new_tokens, batch_size):
    """Labelling's generation loop before it ran on an executor (the reference)."""
    from refusal_atlas.chat import pad_left
    from refusal_atlas.generation import (
        decode,
        greedy_generate,
        length_sorted_batches,
        stop_token_ids,
    )

    stop = stop_token_ids(lm.model, lm.tokenizer)
    encoded = [fmt.encode(p.text) for p in prompts]
    out = {}
    for group in length_sorted_batches([len(e) for e in encoded], batch_size):
        ids = greedy_generate(lm.model, pad_left([encoded[i] for i in group], fmt.pad_id),
                              max_new_tokens=max_new_tokens, stop_ids=stop)
        for i, x in zip(group, ids):
            out[prompts[i].id] = {"prompt_id": prompts[i].id, "response": decode(lm.tokenizer, x),
                                  "n_tokens": len(x)}
    return out


def test_generation_on_the_local_executor_gives_the_same_tokens(qwen_tiny, tmp_path):
    import json

    from refusal_atlas.sweeps import LocalExecutor

    prompts = [Prompt(f"p{i}", "word " * (1 + i % 5) + f"prompt {i}", "A", i % 2 == 0)
               for i in range(11)]
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    store = tmp_path / "responses.jsonl"
    got = generate_responses(qwen_tiny, fmt, prompts, store, max_new_tokens=6, batch_size=3,
                             executor=LocalExecutor())
    assert got == _responses_as_before(qwen_tiny, fmt, prompts, 6, 3)
    ids = [json.loads(x)["prompt_id"] for x in store.read_text().splitlines()]
    assert sorted(ids) == sorted(p.id for p in prompts)  # each row written once
