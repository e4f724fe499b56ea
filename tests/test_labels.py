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


def test_generation_fills_the_activation_cache_on_the_way(qwen_tiny, tmp_path):
    """The prompts' activations read during the prefill equal a separate extraction, and a
    later extraction of them runs no forward pass."""
    import torch

    from refusal_atlas import hooks
    from refusal_atlas.activations import ActivationCache, extract_activations

    prompts = [Prompt(f"p{i}", "word " * (1 + i % 5) + f"prompt {i}", "A", i % 2 == 0)
               for i in range(7)]
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    cache = ActivationCache(tmp_path / "acts", "tiny")
    with_capture = generate_responses(qwen_tiny, fmt, prompts, tmp_path / "a.jsonl",
                                      max_new_tokens=5, batch_size=3, activation_cache=cache,
                                      capture=([0, 2, 4], [-2, -1]))
    plain = generate_responses(qwen_tiny, fmt, prompts, tmp_path / "b.jsonl",
                               max_new_tokens=5, batch_size=3)
    assert with_capture == plain  # capturing changes no token
    direct = extract_activations(qwen_tiny, fmt, [p.text for p in prompts], [0, 2, 4], [-2, -1],
                                 batch_size=7)
    ran = []
    hs = [layer.register_forward_hook(lambda *a: ran.append(1))
          for layer in hooks.decoder_layers(qwen_tiny.model)]
    try:
        cached = extract_activations(qwen_tiny, fmt, [p.text for p in prompts], [0, 2, 4],
                                     [-2, -1], cache=ActivationCache(tmp_path / "acts", "tiny"))
    finally:
        for h in hs:
            h.remove()
    assert ran == []
    torch.testing.assert_close(cached, direct, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- lazy labelling

def _label_lazily(suite, label_of, demand, batch_size=8, labels=None):
    """Lazy labelling's rounds with known labels instead of generating: (labels, rounds)."""
    from refusal_atlas.labels import next_to_label

    labels = dict(labels or {})
    rounds = []
    while True:
        todo = next_to_label(suite, labels, demand, batch_size=batch_size)
        if not todo:
            return labels, rounds
        assert not {p.id for p in todo} & set(labels)  # nothing labelled twice
        rounds.append(len(todo))
        labels.update((p.id, label_of[p.id]) for p in todo)
        assert len(rounds) < 100


def _toy(n_split=60, n_benign=80):
    """Toy suite and its labels: A refuses 2 of 3, B 1 of 2; the benign pool 1 of 4."""
    from refusal_atlas.labels import assign_label

    suite = toy_suite(n_split=n_split, n_benign=n_benign)

    def refused(p):
        i = int(p.id.split("/")[1])
        return {"A": i % 3 != 2, "B": i % 2 == 0}.get(p.split, i % 4 == 0)

    return suite, {p.id: assign_label(p.harmful, refused(p)) for p in suite.all_prompts()}


def _records(suite, label_of, ids):
    from refusal_atlas.labels import LabelRecord

    return [LabelRecord(p.id, p.split, p.harmful, "r", label_of[p.id] in ("HR", "BR"),
                        label_of[p.id], "j", "", 1) for p in suite.all_prompts() if p.id in ids]


def test_lazy_labelling_labels_less_and_draws_the_pools_and_test_set_full_labelling_draws():
    from refusal_atlas.labels import LabelDemand
    from refusal_atlas.pools import build_test_set, draw_training_pools

    suite, label_of = _toy()
    demand = LabelDemand(n_hr=8, n_bc=8, test_per_group=6, seed=123)
    labels, rounds = _label_lazily(suite, label_of, demand, batch_size=8)
    assert len(labels) < len(label_of)
    assert all(n >= 8 for n in rounds)  # batches stay full
    full = _records(suite, label_of, set(label_of))
    lazy = _records(suite, label_of, set(labels))
    kw = dict(n_hr=8, n_bc=8, seed=123, min_hr=4)
    pools, lazy_pools = draw_training_pools(suite, full, **kw), draw_training_pools(suite, lazy, **kw)
    assert list(lazy_pools.splits) == list(pools.splits) == ["A", "B"]
    for split in pools.splits:
        assert lazy_pools.splits[split].hr_ids == pools.splits[split].hr_ids
        assert lazy_pools.splits[split].bc_ids == pools.splits[split].bc_ids
    test = build_test_set(suite, lazy, lazy_pools, n_per_group=6, seed=0)
    assert {g: len(ids) for g, ids in test.groups.items()} == {"HR": 6, "HC": 6, "BR": 6,
                                                              "BC": 6}
    assert not test.warnings
    # a split is labelled in suite order: a prefix of it
    for split, prompts in suite.splits.items():
        n = sum(p.id in labels for p in prompts)
        assert all(p.id in labels for p in prompts[:n])


def test_lazy_labelling_sizes_rounds_from_the_rates_seen():
    from refusal_atlas.labels import LabelDemand, next_to_label

    suite, label_of = _toy()
    demand = LabelDemand(n_hr=8, n_bc=8, test_per_group=0, seed=123)
    first = next_to_label(suite, {}, demand, batch_size=1)
    # nothing seen yet: as many rows as still needed, in labelling order
    assert [p.id for p in first if p.split == "A"] == [f"A/{i}" for i in range(8)]
    labels = {p.id: label_of[p.id] for p in first}
    second = next_to_label(suite, labels, demand, batch_size=1)
    # A found 6 HR in 8 rows (rate (6+1)/(8+1)): 2 more HR take ceil(2 * 9 / 7) = 3 rows
    assert [p.id for p in second if p.split == "A"] == ["A/8", "A/9", "A/10"]


def test_lazy_labelling_stops_when_a_source_is_exhausted():
    from refusal_atlas.labels import LabelDemand, assign_label

    suite = toy_suite(n_split=12, n_benign=20)
    # A refuses everything (no HC), B nothing (no HR: no direction, so its HC do not count)
    label_of = {p.id: assign_label(p.harmful, {"A": True, "B": False}.get(
        p.split, int(p.id.split("/")[1]) % 3 == 0)) for p in suite.all_prompts()}
    demand = LabelDemand(n_hr=4, n_bc=4, test_per_group=4, seed=1)
    labels, rounds = _label_lazily(suite, label_of, demand, batch_size=4)
    assert all(p.id in labels for p in suite.splits["B"])  # exhausted looking for HR
    assert all(p.id in labels for p in suite.splits["A"])  # exhausted looking for HC
    assert sum(p.id in labels for p in suite.benign["ben"]) < 20  # the benign pool had enough


def test_lazy_labelling_resumes_from_any_labels_and_label_all_is_a_fixed_point():
    from refusal_atlas.labels import LabelDemand, next_to_label

    suite, label_of = _toy()
    demand = LabelDemand(n_hr=8, n_bc=8, test_per_group=6, seed=123)
    assert next_to_label(suite, label_of, demand, batch_size=8) == []  # all labelled: done
    # labels with gaps (an earlier run of other settings): gaps in the order are filled first
    scattered = {pid: lab for k, (pid, lab) in enumerate(label_of.items()) if k % 3 == 0}
    labels, _ = _label_lazily(suite, label_of, demand, labels=scattered)
    fresh, _ = _label_lazily(suite, label_of, demand)
    for split, prompts in suite.splits.items():
        hr = [p.id for p in prompts if labels.get(p.id) == "HR"][:8]
        assert hr == [p.id for p in prompts if fresh.get(p.id) == "HR"][:8]
    # a larger test set asks for more, never for what is labelled already
    more, _ = _label_lazily(suite, label_of, LabelDemand(n_hr=8, n_bc=8, test_per_group=12,
                                                        seed=123), labels=fresh)
    assert set(fresh) < set(more)


def test_label_counts_say_what_was_not_labelled():
    from refusal_atlas.labels import label_counts

    suite, label_of = _toy(n_split=10, n_benign=10)
    ids = {p.id for p in suite.all_prompts() if int(p.id.split("/")[1]) < 6}
    counts = label_counts(suite, _records(suite, label_of, ids))
    assert counts["splits"]["A"] == {"pool": 10, "labelled": 6, "HR": 4, "HC": 2,
                                     "judge_errors": 0, "not_labelled": 4}
    assert counts["benign"]["ben"] == {"pool": 10, "labelled": 6, "BR": 2, "BC": 4,
                                       "judge_errors": 0, "not_labelled": 4}


def test_stopping_at_the_verdict_keeps_every_verdict(qwen_tiny, tmp_path):
    """Responses cut once the substring judge's verdict is settled get the verdicts of full
    responses; only refusals are shorter."""
    from refusal_atlas.judges import SubstringJudge

    prompts = [Prompt(f"p{i}", "word " * (1 + i % 5) + f"prompt {i}", "A", i % 2 == 0)
               for i in range(11)]
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    full = generate_responses(qwen_tiny, fmt, prompts, tmp_path / "full.jsonl",
                              max_new_tokens=10, batch_size=3)
    # a "refusal phrase" this random model says in some responses, a few tokens in
    phrase = full["p0"]["response"].lower()[8:11]
    judge = SubstringJudge(phrases=[phrase])
    cut = generate_responses(qwen_tiny, fmt, prompts, tmp_path / "cut.jsonl",
                             max_new_tokens=10, batch_size=3, unit_batches=2,
                             stop_phrases=judge.settling_phrases)
    ids = [p.id for p in prompts]
    verdicts = {k: [j.refused for j in judge.judge(ids, [r[i]["response"] for i in ids])]
                for k, r in (("full", full), ("cut", cut))}
    assert verdicts["cut"] == verdicts["full"] and any(verdicts["full"])
    for i, refused in zip(ids, verdicts["full"]):
        if refused:
            assert cut[i]["n_tokens"] <= full[i]["n_tokens"]
            assert full[i]["response"].startswith(cut[i]["response"])
        else:
            assert cut[i] == full[i]
    assert any(cut[i]["n_tokens"] < full[i]["n_tokens"] for i in ids)
