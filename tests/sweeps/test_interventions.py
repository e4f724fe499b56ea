"""Per-row interventions: a mixed batch gives each row what it gives alone."""

import pytest

from refusal_atlas import hooks
from refusal_atlas.chat import ChatFormatter, pad_left
from refusal_atlas.generation import greedy_generate, stop_token_ids
from refusal_atlas.models import load_model
from refusal_atlas.sweeps import row_interventions

from .helpers import DEVICES, MIXED, TEXTS, tiny_vectors


def _generate(lm, fmt, conditions, texts, vectors, n=8):
    batch = pad_left([fmt.encode(t) for t in texts], fmt.pad_id)
    with row_interventions(lm.model, conditions, vectors):
        return greedy_generate(lm.model, batch, max_new_tokens=n,
                               stop_ids=stop_token_ids(lm.model, lm.tokenizer))


def test_mixed_batch_equals_each_row_alone(tiny_lm):
    """Steer rows (several directions, alphas and layers), a vector row, ablation rows and
    baseline rows in ONE batch give the same tokens as each row run alone."""
    fmt = ChatFormatter(tiny_lm.tokenizer)
    vectors = tiny_vectors(tiny_lm)
    texts = TEXTS[:3]
    rows = [(c, t) for c in MIXED for t in texts]
    n_hooks = hooks.active_hook_count(tiny_lm.model)
    mixed = _generate(tiny_lm, fmt, [c for c, _ in rows], [t for _, t in rows], vectors)
    assert hooks.active_hook_count(tiny_lm.model) == n_hooks  # every hook removed
    alone = [_generate(tiny_lm, fmt, [c], [t], vectors)[0] for c, t in rows]
    assert mixed == alone
    plain = greedy_generate(tiny_lm.model, fmt.batch(texts), max_new_tokens=8,
                            stop_ids=stop_token_ids(tiny_lm.model, tiny_lm.tokenizer))
    by_cond = {c.id: mixed[i * 3:(i + 1) * 3] for i, c in enumerate(MIXED)}
    assert by_cond["baseline"] == plain and by_cond["steer/B/a=0"] == plain
    changed = [cid for cid, out in by_cond.items() if out != plain]
    assert len(changed) >= 5, changed  # the interventions really do something


@pytest.mark.parametrize("device", DEVICES)
def test_interventions_on_each_device(tiny_model_dirs, device):
    """The per-row hooks run where the model is (CPU vectors move to its device)."""
    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32", device=device)
    fmt = ChatFormatter(lm.tokenizer)
    vectors = tiny_vectors(lm)
    conditions = MIXED[:3] + MIXED[5:]
    mixed = _generate(lm, fmt, conditions, [TEXTS[1]] * len(conditions), vectors, n=4)
    alone = [_generate(lm, fmt, [c], [TEXTS[1]], vectors, n=4)[0] for c in conditions]
    assert mixed == alone and mixed[0] == mixed[-1]  # steer/B/a=0 is the baseline


def test_subspace_rows_mixed_with_other_conditions(tiny_lm):
    """A subspace ablation row beside steer, single-direction ablation and baseline rows in
    one batch gives what each gives alone; the Ray worker spec carries the basis."""
    import torch

    from refusal_atlas.sweeps import BASELINE, BatchGenerator, Condition, span_vector

    fmt = ChatFormatter(tiny_lm.tokenizer)
    vectors = tiny_vectors(tiny_lm)
    vectors["S"] = span_vector(torch.stack([vectors["A"].vector, vectors["B"].vector]), 2)
    conds = [BASELINE, Condition("ablate", "S"), Condition("ablate", "A"),
             Condition("steer", "B", 5.0)]
    mixed = _generate(tiny_lm, fmt, conds, [TEXTS[1]] * 4, vectors)
    alone = [_generate(tiny_lm, fmt, [c], [TEXTS[1]], vectors)[0] for c in conds]
    assert mixed == alone
    with hooks.ablate_subspace(tiny_lm.model, vectors["S"].basis):
        direct = greedy_generate(tiny_lm.model, fmt.batch([TEXTS[1]]), max_new_tokens=8,
                                 stop_ids=stop_token_ids(tiny_lm.model, tiny_lm.tokenizer))[0]
    assert mixed[1] == direct
    tiny_lm.load_args = getattr(tiny_lm, "load_args", None) or {"name_or_path": "x"}
    spec = BatchGenerator(tiny_lm, fmt, vectors, max_new_tokens=2).worker_spec()
    assert torch.allclose(torch.tensor(spec["vectors"]["S"]["basis"]), vectors["S"].basis)
    assert "basis" not in spec["vectors"]["A"]
