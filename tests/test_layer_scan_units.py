"""The layer scan's work units: through the local executor exactly the plain library calls
(same numbers, same forward passes); through a remote executor (an in-process stand-in that
ships plain data, and real Ray actors) the same numbers again, and the driver's cache."""

import json

import pytest
import torch
from conftest import one_torch_thread

from refusal_atlas.activations import ActivationCache, extract_activations
from refusal_atlas.chat import ChatFormatter
from refusal_atlas.layer_scan import induce_scores
from refusal_atlas.layer_scan_units import scan_activations, scan_induce_scores
from refusal_atlas.sweeps import LocalExecutor
from refusal_atlas.sweeps.worker import task_kind

TEXTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and the sea.",
         "What is the capital of France?", "Write a poem", "How do I kill a Python process?",
         "Why is the sky blue?"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # and the Ray actors run one thread each: bit-identical sums
        yield


class PlainDataExecutor:
    """A remote executor in this process: units and results cross as JSON / numpy, and the
    task is rebuilt from its worker spec on ``lm`` (what every Ray actor does)."""

    name, remote = "plain", True

    def __init__(self, lm):
        self.lm, self.n_units = lm, 0

    def run(self, units, task):
        spec = json.loads(json.dumps(task.worker_spec()))
        kind = task_kind(spec)
        worker = kind.build(self.lm, spec)
        for unit in reversed(list(units)):  # any order
            self.n_units += 1
            yield kind.decode(unit, worker(json.loads(json.dumps(kind.encode(unit)))))


class NoWork:
    name, remote = "none", True

    def run(self, units, task):
        assert not units, "everything should come from the cache"
        return iter(())


def _candidates(lm):
    g = torch.Generator().manual_seed(3)
    return {layer: (torch.nn.functional.normalize(torch.randn(lm.d_model, generator=g), dim=0),
                    2.0 + layer) for layer in range(1, lm.n_layers)}


def test_local_activations_are_extract_activations(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    layers = list(range(qwen_tiny.n_layers + 1))
    direct = extract_activations(qwen_tiny, fmt, TEXTS, layers, [-1, -2], batch_size=3)
    cache = ActivationCache(tmp_path, qwen_tiny.cache_key)
    local = scan_activations(LocalExecutor(), qwen_tiny, fmt, TEXTS, layers, [-1, -2],
                             batch_size=3, cache=cache)
    assert torch.equal(local, direct)
    assert torch.equal(scan_activations(NoWork(), qwen_tiny, fmt, TEXTS, layers, [-1, -2],
                                        batch_size=3, cache=cache), direct)


def test_remote_activations_are_the_local_ones_and_fill_the_cache(qwen_tiny, tmp_path):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    layers = [0, 1, qwen_tiny.n_layers]
    first = extract_activations(qwen_tiny, fmt, TEXTS, layers, [-1], batch_size=3)

    def seeded(folder):  # prompt 2 cached at every layer, prompt 0 at one layer only
        cache = ActivationCache(folder, qwen_tiny.cache_key)
        cache.put(1, -1, [fmt.prompt_key(TEXTS[0])], first[[0], 1, 0])
        for li, layer in enumerate(layers):
            cache.put(layer, -1, [fmt.prompt_key(TEXTS[2])], first[[2], li, 0])
        return cache

    local = scan_activations(LocalExecutor(), qwen_tiny, fmt, TEXTS, layers, [-1], batch_size=3,
                             cache=seeded(tmp_path / "local"))
    executor = PlainDataExecutor(qwen_tiny)
    remote = scan_activations(executor, qwen_tiny, fmt, TEXTS, layers, [-1], batch_size=3,
                              cache=seeded(tmp_path / "remote"))
    assert torch.equal(remote, local) and torch.equal(remote[2], first[2])
    assert executor.n_units == 2  # 6 uncached prompts, one shard per batch of 3
    again = scan_activations(NoWork(), qwen_tiny, fmt, TEXTS, layers, [-1], batch_size=3,
                             cache=ActivationCache(tmp_path / "remote", qwen_tiny.cache_key))
    # prompt 0 now has two cached values at layer 1 (the seed's and the new one): either may
    # be read, as with extract_activations
    assert torch.equal(again[1:], local[1:]) and torch.equal(again[0, [0, 2]], local[0, [0, 2]])


def test_induce_scores_through_an_executor_are_induce_scores(qwen_tiny):
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    candidates, tokens = _candidates(qwen_tiny), [42, 7]
    direct = induce_scores(qwen_tiny.model, fmt.batch(TEXTS[:4]), candidates, tokens)
    passes = []
    handle = qwen_tiny.model.register_forward_hook(lambda *_: passes.append(1))
    try:
        advanced = []
        local = scan_induce_scores(LocalExecutor(), qwen_tiny, fmt, TEXTS[:4], candidates, tokens,
                                   on_layer=lambda: advanced.append(1))
    finally:
        handle.remove()
    assert local == direct and list(local) == list(candidates)
    # one baseline pass and one per layer, each the shared template prefix + the own tokens
    assert len(passes) == 2 * (1 + len(candidates)) and len(advanced) == len(candidates)
    remote = scan_induce_scores(PlainDataExecutor(qwen_tiny), qwen_tiny, fmt, TEXTS[:4],
                                candidates, tokens)
    assert remote == direct and list(remote) == list(candidates)


def test_the_layer_scan_on_ray_is_the_local_one(qwen_tiny, tmp_path, ray_cluster):
    from refusal_atlas.sweeps.ray_executor import RayExecutor

    fmt = ChatFormatter(qwen_tiny.tokenizer)
    layers = list(range(qwen_tiny.n_layers + 1))
    candidates, tokens = _candidates(qwen_tiny), [42, 7]
    local_acts = scan_activations(LocalExecutor(), qwen_tiny, fmt, TEXTS, layers, [-1],
                                  batch_size=2)
    local_scores = scan_induce_scores(LocalExecutor(), qwen_tiny, fmt, TEXTS[:4], candidates,
                                      tokens)
    with RayExecutor(actors=2, num_cpus=1) as executor:
        acts = scan_activations(executor, qwen_tiny, fmt, TEXTS, layers, [-1], batch_size=2,
                                cache=ActivationCache(tmp_path, qwen_tiny.cache_key))
        scores = scan_induce_scores(executor, qwen_tiny, fmt, TEXTS[:4], candidates, tokens)
        assert len(executor.slots) == 2  # the same two actors served both
    assert torch.equal(acts, local_acts)
    assert scores == local_scores
