"""A batch generator rebuilt from its worker spec (what every Ray actor does) generates the
same responses as the driver's, on each device there is."""

import json

import pytest

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.judges import get_judge
from refusal_atlas.models import load_model
from refusal_atlas.sweeps import BatchGenerator, plan_batches, run_sweep, steering_grid
from refusal_atlas.sweeps.worker import generator_from_spec, result_from_dict, result_to_dict

from .helpers import DEVICES, MIXED, tiny_prompts, tiny_vectors


@pytest.mark.parametrize("device", DEVICES)
def test_a_rebuilt_generator_gives_the_same_responses(tiny_model_dirs, device):
    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32", device=device)
    fmt = ChatFormatter(lm.tokenizer, max_tokens=64)
    generator = BatchGenerator(lm, fmt, tiny_vectors(lm), max_new_tokens=4, max_active=3,
                               stop_phrases=["zz"])
    spec = json.loads(json.dumps(generator.worker_spec()))  # plain data only
    assert spec["model"]["dtype"] == "float32" and spec["formatter"]["max_tokens"] == 64
    rebuilt = generator_from_spec(spec, device=device)
    inner = rebuilt.generate_batch
    assert inner.max_active == 3 and inner.stop_phrases == ("zz",)
    prompts = tiny_prompts()
    lengths = {p.id: len(fmt.encode(p.text)) for p in prompts}
    for batch in plan_batches(MIXED, prompts, lengths, 8)[:2]:
        mine = generator(batch)
        data = json.loads(json.dumps(result_to_dict(rebuilt(batch))))
        theirs = result_from_dict(batch, data)
        assert theirs.responses == mine.responses and theirs.n_tokens == mine.n_tokens
    with pytest.raises(RuntimeError, match="does not match"):
        result_from_dict(plan_batches(MIXED, prompts, lengths, 8)[2], data)


@pytest.mark.parametrize("device", DEVICES)
def test_a_sweep_on_each_device_gives_every_row(tiny_model_dirs, tmp_path, device):
    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32", device=device)
    fmt = ChatFormatter(lm.tokenizer)
    conds = steering_grid(["A", "B"], [0, 4])
    result = run_sweep(lm, fmt, tiny_prompts(), conds, tiny_vectors(lm), tmp_path, max_new_tokens=3,
                       batch_size=4, judge=get_judge("substring"))
    assert len(result.rows) == len(conds) * len(tiny_prompts())
    assert result.stats["oom_splits"] == 0 and str(lm.device).startswith(device)


def test_a_model_without_load_arguments_cannot_be_shipped(qwen_tiny):
    from types import SimpleNamespace

    from refusal_atlas.errors import UserError

    generator = BatchGenerator(qwen_tiny, ChatFormatter(qwen_tiny.tokenizer), {}, max_new_tokens=2)
    generator.lm = SimpleNamespace(model=qwen_tiny.model, tokenizer=qwen_tiny.tokenizer)
    with pytest.raises(UserError, match="loaded by load_model"):
        generator.worker_spec()


def test_a_worker_loads_the_model_with_the_drivers_device_map(tiny_model_dirs, monkeypatch):
    """``model.device_map`` reaches every worker's from_pretrained (on a GPU actor it spreads
    the replica over the actor's ``num_gpus``; here, on CPU, ``auto`` keeps it whole)."""
    import transformers

    from refusal_atlas.sweeps.worker import load_worker_model

    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32", device="cpu",
                    device_map="auto")
    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    spec = json.loads(json.dumps(lm.load_args))
    worker_lm = load_worker_model(spec, device="cpu")
    assert seen["device_map"] == "auto" and worker_lm.load_args["device_map"] == "auto"
    fmt = ChatFormatter(lm.tokenizer)
    prompts = tiny_prompts()
    batch = plan_batches(MIXED[:3], prompts, {p.id: len(fmt.encode(p.text)) for p in prompts},
                         6)[0]
    mine = BatchGenerator(lm, fmt, tiny_vectors(lm), max_new_tokens=3)(batch)
    theirs = BatchGenerator(worker_lm, fmt, tiny_vectors(lm), max_new_tokens=3)(batch)
    assert theirs.responses == mine.responses


def test_a_rebuilt_generator_ablates_the_same_subspace(tiny_model_dirs):
    """A subspace (a vector with a basis) travels in the worker spec and is ablated alike."""
    import torch

    from refusal_atlas.sweeps import BASELINE, Condition, span_vector

    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32")
    fmt = ChatFormatter(lm.tokenizer, max_tokens=64)
    vectors = tiny_vectors(lm)
    vectors["S"] = span_vector(torch.stack([vectors["A"].vector, vectors["B"].vector]), 2)
    generator = BatchGenerator(lm, fmt, vectors, max_new_tokens=4)
    rebuilt = generator_from_spec(json.loads(json.dumps(generator.worker_spec())))
    prompts = tiny_prompts(3)
    lengths = {p.id: len(fmt.encode(p.text)) for p in prompts}
    (batch,) = plan_batches([BASELINE, Condition("ablate", "S")], prompts, lengths, 8)
    assert rebuilt(batch).responses == generator(batch).responses
