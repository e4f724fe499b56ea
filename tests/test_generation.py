
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.generation import generate, greedy_generate, stop_token_ids

PROMPTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and a sea.",
           "What is the capital of France?"]


def _hf_greedy(lm, batch, n):
    out = lm.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            max_new_tokens=n, do_sample=False, repetition_penalty=None)
    stop = set(stop_token_ids(lm.model, lm.tokenizer))
    rows = []
    for r in out[:, batch.input_ids.shape[1]:].tolist():
        cut = next((i + 1 for i, t in enumerate(r) if t in stop), len(r))
        rows.append(r[:cut])
    return rows


def test_matches_transformers_generate(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    batch = fmt.batch(PROMPTS)
    ours = greedy_generate(tiny_lm.model, batch, max_new_tokens=10,
                           stop_ids=stop_token_ids(tiny_lm.model, tiny_lm.tokenizer))
    assert ours == _hf_greedy(tiny_lm, batch, 10)


def test_dropping_finished_rows_changes_nothing(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    # Make some rows stop early: treat each row's 3rd greedy token as a stop token.
    free = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=[-1])
    stops = [row[2] for row in free[:2]]
    a = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stops)
    b = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stops,
                        drop_finished=False)
    assert a == b
    assert min(len(r) for r in a) < 8  # some rows really did stop early


def test_batched_equals_one_at_a_time(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    stop = stop_token_ids(qwen_tiny.model, qwen_tiny.tokenizer)
    batched = greedy_generate(qwen_tiny.model, fmt.batch(PROMPTS), max_new_tokens=8, stop_ids=stop)
    alone = [greedy_generate(qwen_tiny.model, fmt.batch([p]), max_new_tokens=8, stop_ids=stop)[0]
             for p in PROMPTS]
    assert batched == alone


def test_generate_returns_input_order(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    result = generate(qwen_tiny, PROMPTS, formatter=fmt, max_new_tokens=6, batch_size=2)
    stop = stop_token_ids(qwen_tiny.model, qwen_tiny.tokenizer)
    for prompt, ids in zip(PROMPTS, result.token_ids):
        assert ids == greedy_generate(qwen_tiny.model, fmt.batch([prompt]), max_new_tokens=6,
                                      stop_ids=stop)[0]
    assert len(result.texts) == len(PROMPTS)
