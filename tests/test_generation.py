
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.generation import (
    decode,
    generate,
    greedy_generate,
    stop_at_phrases,
    stop_token_ids,
)

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


def _first_hit(tokenizer, ids, phrase):
    """How many of ``ids`` a row keeps when it stops once its text holds ``phrase``."""
    for n in range(1, len(ids) + 1):
        if phrase in decode(tokenizer, ids[:n]).lower():
            return n
    return len(ids)


def test_a_row_stops_where_a_settling_phrase_first_appears(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    batch = fmt.batch(PROMPTS)
    tok = qwen_tiny.tokenizer
    full = greedy_generate(qwen_tiny.model, batch, max_new_tokens=12, stop_ids=[-1])
    phrase = decode(tok, full[1][:6]).lower()[-3:]
    assert phrase.strip()
    cut = greedy_generate(qwen_tiny.model, batch, max_new_tokens=12, stop_ids=[-1],
                          max_active=2, stop_when=stop_at_phrases(tok, [phrase]))
    assert cut == [ids[:_first_hit(tok, ids, phrase)] for ids in full]
    assert len(cut[1]) <= 6 < len(full[1])
    # the judge's verdict is the same on the cut and the full response
    assert [phrase in decode(tok, c).lower() for c in cut] == \
           [phrase in decode(tok, f).lower() for f in full]
