"""The hooks module against plain transformers computations (no hooks) as reference."""

import pytest
import torch

from refusal_atlas import hooks
from refusal_atlas.chat import ChatFormatter, position_ids_from_mask
from refusal_atlas.generation import greedy_generate, stop_token_ids

PROMPTS = ["Hi", "How do I make a cake?", "Tell me a story about a dragon and the sea.",
           "What is the capital of France?"]


def _batch(lm, prompts=PROMPTS):
    return ChatFormatter(lm.tokenizer).batch(prompts)


def _reference_hidden_states(lm, batch):
    with torch.no_grad():
        out = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, output_hidden_states=True)
    return out.hidden_states


def _unit(d, seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    return v / v.norm()


def _no_cache_loop(lm, batch, n_new, stop):
    """How the paper's code generates: a full forward over the whole sequence every step."""
    ids, mask = batch.input_ids, batch.attention_mask
    out = [[] for _ in range(ids.shape[0])]
    done = [False] * ids.shape[0]
    for _ in range(n_new):
        with torch.no_grad():
            logits = lm.model(input_ids=ids, attention_mask=mask,
                              position_ids=position_ids_from_mask(mask), use_cache=False).logits
        tok = logits[:, -1].argmax(-1)
        for r, t in enumerate(tok.tolist()):
            if not done[r]:
                out[r].append(t)
                done[r] = t in stop
        ids = torch.cat([ids, tok[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if all(done):
            break
    return out


def test_capture_matches_output_hidden_states(tiny_lm):
    batch = _batch(tiny_lm)
    ref = _reference_hidden_states(tiny_lm, batch)
    layers = [0, 1, 3]
    acts = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, layers, [-2, -1])
    for layer in layers:
        torch.testing.assert_close(acts[layer], ref[layer][:, [-2, -1]], rtol=0, atol=0)


def test_capture_of_final_residual_is_last_block_output(tiny_lm):
    batch = _batch(tiny_lm)
    seen = {}
    last = hooks.decoder_layers(tiny_lm.model)[-1]
    handle = last.register_forward_hook(lambda m, a, o: seen.setdefault("out", o))
    try:
        acts = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask,
                                 [tiny_lm.n_layers], None)
    finally:
        handle.remove()
    out = seen["out"][0] if isinstance(seen["out"], tuple) else seen["out"]
    torch.testing.assert_close(acts[tiny_lm.n_layers], out, rtol=0, atol=0)


def test_capture_stops_after_the_needed_layer(qwen_tiny):
    batch = _batch(qwen_tiny)
    ran = []
    handles = [layer.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
               for i, layer in enumerate(hooks.decoder_layers(qwen_tiny.model))]
    handles.append(qwen_tiny.model.lm_head.register_forward_hook(lambda *a: ran.append("head")))
    try:
        hooks.run_capture(qwen_tiny.model, batch.input_ids, batch.attention_mask, [2], [-2])
    finally:
        for h in handles:
            h.remove()
    assert ran == [0, 1]  # blocks 0 and 1 produce resid_pre of 2; nothing after runs


def test_layer_out_of_range_is_a_user_error(qwen_tiny):
    from refusal_atlas.errors import UserError

    with pytest.raises(UserError, match="out of range"):
        with hooks.add_to_resid_pre(qwen_tiny.model, 99, torch.zeros(qwen_tiny.d_model)):
            pass


def test_add_shifts_resid_pre_by_exactly_alpha_d(tiny_lm):
    batch = _batch(tiny_lm)
    d = _unit(tiny_lm.d_model, 1)
    base = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, [2])[2]
    with hooks.add_to_resid_pre(tiny_lm.model, 2, d, alpha=3.5):
        steered = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, [2])[2]
    torch.testing.assert_close(steered, base + 3.5 * d, rtol=0, atol=1e-6)


def test_alpha_zero_generation_is_identical(tiny_lm):
    batch = _batch(tiny_lm)
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    plain = greedy_generate(tiny_lm.model, batch, max_new_tokens=10, stop_ids=stop)
    with hooks.add_to_resid_pre(tiny_lm.model, 1, _unit(tiny_lm.d_model, 2), alpha=0.0):
        steered = greedy_generate(tiny_lm.model, batch, max_new_tokens=10, stop_ids=stop)
    assert steered == plain


@pytest.mark.parametrize("intervention", ["add", "ablate"])
def test_kv_cached_generation_matches_full_recompute(tiny_lm, intervention):
    batch = _batch(tiny_lm)
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    d = _unit(tiny_lm.d_model, 3)
    ctx = (hooks.add_to_resid_pre(tiny_lm.model, 1, d, alpha=8.0) if intervention == "add"
           else hooks.ablate_direction(tiny_lm.model, d))
    with ctx:
        cached = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
        recomputed = _no_cache_loop(tiny_lm, batch, 8, stop)
    assert cached == recomputed
    plain = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
    if intervention == "add":
        assert cached != plain  # a strong push changes what the model says


def test_per_row_conditions_equal_conditions_run_alone(tiny_lm):
    """Rows with their own (direction, alpha) in one batch == each condition over the batch."""
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    prompts = PROMPTS[:3]
    dirs = torch.stack([_unit(tiny_lm.d_model, s) for s in (4, 5, 6)])
    alphas = torch.tensor([6.0, 0.0, 12.0])
    batch = _batch(tiny_lm, prompts)
    with hooks.add_to_resid_pre(tiny_lm.model, 1, dirs, alpha=alphas):
        mixed = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
    for row in range(3):
        with hooks.add_to_resid_pre(tiny_lm.model, 1, dirs[row], alpha=float(alphas[row])):
            alone = greedy_generate(tiny_lm.model, _batch(tiny_lm, [prompts[row]]),
                                    max_new_tokens=8, stop_ids=stop)[0]
        assert mixed[row] == alone


def test_per_row_state_follows_dropped_rows(qwen_tiny):
    """Rows that stop early are dropped; the remaining rows keep their own vectors."""
    batch = _batch(qwen_tiny)
    d = torch.stack([_unit(qwen_tiny.d_model, s) for s in range(4)])
    alphas = torch.tensor([5.0, 0.0, 9.0, 2.0])
    with hooks.add_to_resid_pre(qwen_tiny.model, 2, d, alpha=alphas):
        free = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=[-1])
        stops = [free[0][1], free[2][3]]
        dropped = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stops)
        kept = greedy_generate(qwen_tiny.model, batch, max_new_tokens=8, stop_ids=stops,
                               drop_finished=False)
    assert dropped == kept
    assert len(dropped[0]) <= 2


def test_ablation_removes_the_direction_everywhere(tiny_lm):
    batch = _batch(tiny_lm)
    d = _unit(tiny_lm.d_model, 7)
    layers = list(range(tiny_lm.n_layers + 1))
    base = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, layers)
    with hooks.ablate_direction(tiny_lm.model, d):
        # capture hooks are registered after the ablation hooks, so they see ablated inputs
        acts = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, layers)
    for layer in layers:
        proj = acts[layer] @ d
        scale = base[layer].norm(dim=-1).max()
        assert proj.abs().max() <= 1e-5 * scale, f"layer {layer}: residual keeps the direction"
    # the final residual is orthogonal only if every sub-layer contribution was ablated
    assert (base[tiny_lm.n_layers] @ d).abs().max() > 1e-3


def test_zero_rows_are_untouched_by_ablation(tiny_lm):
    batch = _batch(tiny_lm)
    d = torch.stack([_unit(tiny_lm.d_model, 8), torch.zeros(tiny_lm.d_model),
                     _unit(tiny_lm.d_model, 9), torch.zeros(tiny_lm.d_model)])
    with torch.no_grad():
        plain = tiny_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              position_ids=batch.position_ids).logits
        with hooks.ablate_direction(tiny_lm.model, d):
            mixed = tiny_lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                  position_ids=batch.position_ids).logits
    torch.testing.assert_close(mixed[[1, 3]], plain[[1, 3]], rtol=0, atol=0)
    assert not torch.allclose(mixed[0], plain[0])


def test_hooks_are_removed_on_exit_and_on_error(qwen_tiny):
    before = hooks.active_hook_count(qwen_tiny.model)
    d = _unit(qwen_tiny.d_model, 10)
    with hooks.add_to_resid_pre(qwen_tiny.model, 1, d, 2.0), hooks.ablate_direction(qwen_tiny.model, d):
        assert hooks.active_hook_count(qwen_tiny.model) > before
    assert hooks.active_hook_count(qwen_tiny.model) == before
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.ablate_direction(qwen_tiny.model, d):
            raise RuntimeError("boom")
    assert hooks.active_hook_count(qwen_tiny.model) == before
    assert not hooks._ROW_STATE.get(qwen_tiny.model)


def test_steered_generation_is_independent_of_padding(tiny_lm):
    """The same prompt alone or left-padded beside a longer one gives the same tokens."""
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    d = _unit(tiny_lm.d_model, 11)
    with hooks.add_to_resid_pre(tiny_lm.model, 1, d, alpha=5.0):
        alone = greedy_generate(tiny_lm.model, _batch(tiny_lm, ["Hi"]), max_new_tokens=8,
                                stop_ids=stop)[0]
        padded = greedy_generate(tiny_lm.model, _batch(tiny_lm, ["Hi", PROMPTS[2] * 3]),
                                 max_new_tokens=8, stop_ids=stop)[0]
    assert alone == padded


def test_ablation_rejects_non_unit_directions(qwen_tiny):
    with pytest.raises(ValueError, match="unit"):
        with hooks.ablate_direction(qwen_tiny.model, 3 * _unit(qwen_tiny.d_model, 1)):
            pass


# --------------------------------------------------------------------------- subspace ablation


def _basis(d, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, k, generator=g)).Q.T.contiguous()  # [k, d]


def test_subspace_ablation_removes_the_span_everywhere(tiny_lm):
    batch = _batch(tiny_lm)
    q = _basis(tiny_lm.d_model, 3, 11)
    layers = list(range(tiny_lm.n_layers + 1))
    base = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, layers)
    with hooks.ablate_subspace(tiny_lm.model, q):
        acts = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, layers)
    for layer in layers:
        scale = base[layer].norm(dim=-1).max()
        assert (acts[layer] @ q.T).abs().max() <= 1e-5 * scale, f"layer {layer} keeps the span"
    assert (base[tiny_lm.n_layers] @ q.T).abs().max() > 1e-3


def test_subspace_ablation_equals_manual_projection(qwen_tiny):
    """The span of an orthonormal basis out == its directions ablated one after another
    (orthonormal projections compose); a one-row basis == :func:`ablate_direction`."""
    batch = _batch(qwen_tiny)
    q = _basis(qwen_tiny.d_model, 2, 12)

    def logits():
        with torch.no_grad():
            return qwen_tiny.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                   position_ids=batch.position_ids).logits

    with hooks.ablate_subspace(qwen_tiny.model, q):
        span = logits()
    with hooks.ablate_direction(qwen_tiny.model, q[0]), hooks.ablate_direction(qwen_tiny.model, q[1]):
        stacked = logits()
    torch.testing.assert_close(span, stacked, rtol=1e-4, atol=1e-4)
    with hooks.ablate_subspace(qwen_tiny.model, q[:1]):
        one = logits()
    with hooks.ablate_direction(qwen_tiny.model, q[0]):
        direction = logits()
    torch.testing.assert_close(one, direction, rtol=1e-5, atol=1e-5)
    # the hook's own projection, by hand, on one hidden state
    x = torch.randn(2, 3, qwen_tiny.d_model)
    manual = x - (x @ q.T) @ q
    got = hooks._project_out_basis(x, [hooks.RowVectors(q[0]), hooks.RowVectors(q[1])])
    torch.testing.assert_close(got, manual, rtol=1e-5, atol=1e-5)


def test_subspace_per_row_with_padding_and_kv_cache(tiny_lm):
    """Per-row bases (zero rows pad a smaller span or mean no ablation) in one left-padded,
    KV-cached batch give each row what it gives alone and what a full recompute gives."""
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    d = tiny_lm.d_model
    q = _basis(d, 3, 13)
    rows = torch.zeros(4, 3, d)
    rows[0] = q
    rows[1, :1] = q[:1]
    rows[3, :2] = q[1:]
    batch = _batch(tiny_lm)
    with hooks.ablate_subspace(tiny_lm.model, rows):
        mixed = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
        assert mixed == _no_cache_loop(tiny_lm, batch, 8, stop)
    for r in range(4):
        used = rows[r][rows[r].norm(dim=-1) > 0]
        one = _batch(tiny_lm, [PROMPTS[r]])
        if len(used):
            with hooks.ablate_subspace(tiny_lm.model, used):
                alone = greedy_generate(tiny_lm.model, one, max_new_tokens=8, stop_ids=stop)[0]
        else:
            alone = greedy_generate(tiny_lm.model, one, max_new_tokens=8, stop_ids=stop)[0]
        assert mixed[r] == alone


def test_subspace_rejects_non_orthonormal_and_removes_hooks(qwen_tiny):
    before = hooks.active_hook_count(qwen_tiny.model)
    q = _basis(qwen_tiny.d_model, 2, 14)
    with pytest.raises(ValueError, match="orthonormal"):
        with hooks.ablate_subspace(qwen_tiny.model, torch.stack([q[0], q[0]])):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.ablate_subspace(qwen_tiny.model, q):
            assert hooks.active_hook_count(qwen_tiny.model) > before
            raise RuntimeError("boom")
    assert hooks.active_hook_count(qwen_tiny.model) == before


def _edit(d):
    # positionwise and nonlinear (a reflection plus a push scaled to each position's norm,
    # so it changes what every tiny model says, Gemma-2's scaled embeddings included)
    def fn(h):
        x = h.float()
        x = x - 2 * (x @ d)[..., None] * d + 4 * x.norm(dim=-1, keepdim=True) * d
        return x.to(h.dtype)
    return fn


def test_edit_applies_fn_to_chosen_rows_exactly(tiny_lm):
    batch = _batch(tiny_lm)
    d = _unit(tiny_lm.d_model, 21)
    fn = _edit(d)
    base = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, [2])[2]
    with hooks.edit_resid_pre(tiny_lm.model, 2, fn):
        edited = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, [2])[2]
    torch.testing.assert_close(edited, fn(base), rtol=0, atol=1e-6)
    rows = torch.tensor([True, False, True, False])
    with hooks.edit_resid_pre(tiny_lm.model, 2, fn, rows=rows):
        some = hooks.run_capture(tiny_lm.model, batch.input_ids, batch.attention_mask, [2])[2]
    torch.testing.assert_close(some[rows], fn(base)[rows], rtol=0, atol=1e-6)
    assert torch.equal(some[~rows], base[~rows])  # the other rows are untouched, bit for bit


def test_edit_per_row_with_padding_and_kv_cache(tiny_lm):
    """Edited and plain rows in one left-padded, KV-cached batch == each row alone, and ==
    a full recompute without cache."""
    stop = stop_token_ids(tiny_lm.model, tiny_lm.tokenizer)
    prompts = ["Hi", PROMPTS[2] * 2, PROMPTS[1]]
    fn = _edit(_unit(tiny_lm.d_model, 22))
    rows = torch.tensor([True, False, True])
    batch = _batch(tiny_lm, prompts)
    with hooks.edit_resid_pre(tiny_lm.model, 1, fn, rows=rows):
        mixed = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
    with hooks.edit_resid_pre(tiny_lm.model, 1, fn, rows=rows):
        recomputed = _no_cache_loop(tiny_lm, batch, 8, stop)
    assert mixed == recomputed
    for row, prompt in enumerate(prompts):
        single = _batch(tiny_lm, [prompt])
        if rows[row]:
            with hooks.edit_resid_pre(tiny_lm.model, 1, fn):
                alone = greedy_generate(tiny_lm.model, single, max_new_tokens=8, stop_ids=stop)[0]
        else:
            alone = greedy_generate(tiny_lm.model, single, max_new_tokens=8, stop_ids=stop)[0]
        assert mixed[row] == alone
    plain = greedy_generate(tiny_lm.model, batch, max_new_tokens=8, stop_ids=stop)
    assert mixed[0] != plain[0] or mixed[2] != plain[2]  # the edit does something


def test_edit_hook_is_removed_on_exit_and_on_error(qwen_tiny):
    before = hooks.active_hook_count(qwen_tiny.model)
    with hooks.edit_resid_pre(qwen_tiny.model, 1, lambda h: h, rows=[True, False]):
        assert hooks.active_hook_count(qwen_tiny.model) == before + 1
        assert len(hooks._ROW_STATE[qwen_tiny.model]) == 1
    assert hooks.active_hook_count(qwen_tiny.model) == before
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.edit_resid_pre(qwen_tiny.model, 1, lambda h: h):
            raise RuntimeError("boom")
    assert hooks.active_hook_count(qwen_tiny.model) == before
    assert not hooks._ROW_STATE.get(qwen_tiny.model)
