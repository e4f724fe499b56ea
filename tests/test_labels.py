from refusal_atlas.chat import ChatFormatter
from refusal_atlas.data.prompts import Prompt, PromptSuite
from refusal_atlas.labels import LabelRecord, assign_label, generate_responses


def _suite(n_split=20, n_benign=30):
    splits = {s: [Prompt(f"{s}/{i}", f"{s} prompt {i}", s, True) for i in range(n_split)]
              for s in ("A", "B")}
    benign = {"ben": [Prompt(f"ben/{i}", f"benign prompt {i}", "ben", False)
                      for i in range(n_benign)]}
    return PromptSuite("t", splits, benign, {"A": "ben", "B": "ben"})


def _records(suite, refused):
    return [LabelRecord(p.id, p.split, p.harmful, "r", refused(p), assign_label(p.harmful, refused(p)),
                        "j", "", 1) for p in suite.all_prompts()]


def test_assign_label():
    assert [assign_label(True, True), assign_label(True, False), assign_label(False, True),
            assign_label(False, False), assign_label(True, None)] == ["HR", "HC", "BR", "BC", None]


def test_generation_resumes_without_redoing_finished_prompts(qwen_tiny, tmp_path):
    from refusal_atlas import generation

    suite = _suite(n_split=3, n_benign=3)
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

    import refusal_atlas.labels as labels_mod
    labels_mod.greedy_generate = counting
    try:
        full = generate_responses(qwen_tiny, fmt, prompts, store, max_new_tokens=4, batch_size=8)
    finally:
        labels_mod.greedy_generate = original
    assert sum(calls) == len(prompts) - 4
    assert set(full) == {p.id for p in prompts}
    assert {k: full[k]["response"] for k in first} == {k: v["response"] for k, v in first.items()}
