"""Per-row interventions: the one place that turns a batch's conditions into hooks.

Every row of a batch carries its own condition. :func:`row_interventions` registers one
:func:`hooks.add_to_resid_pre` per layer in use (per-row vectors and alphas, zero rows
where unused) and one :func:`hooks.ablate_direction` (per-row directions, zero rows where
unused; :func:`hooks.ablate_subspace` when a row ablates a subspace), so one batched, KV-cached greedy generation serves many conditions.
An ``edit`` condition adds one :func:`hooks.edit_resid_pre` limited to its rows.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator, Mapping, Sequence

import torch

from .. import hooks
from .conditions import Condition
from .vectors import LayerVector, resolved_layer


@contextmanager
def row_interventions(model, conditions: Sequence[Condition],
                      vectors: Mapping[str, LayerVector]) -> Iterator[None]:
    """One batch, one condition per row: per-row add-hooks (one per layer used) and one
    per-row ablation hook. Rows that do not use a hook get a zero row in it, which leaves
    them exactly untouched; hooks no row needs are not registered at all.

    Args:
        model: the Hugging Face causal LM.
        conditions: one per row of the batch, in row order.
        vectors: the vectors the conditions name.

    Example::

        with row_interventions(lm.model, [BASELINE, Condition("steer", "A", 6.0)], vectors):
            ids = greedy_generate(lm.model, batch, max_new_tokens=8, stop_ids=stop)
    """
    adds: dict[int, list[int]] = {}
    ablate_rows: list[int] = []
    edit_rows: dict[str, list[int]] = {}
    for row, c in enumerate(conditions):
        if c.additive and c.alpha != 0.0:
            adds.setdefault(resolved_layer(c, vectors), []).append(row)
        elif c.kind == "ablate":
            ablate_rows.append(row)
        elif c.kind == "edit":
            edit_rows.setdefault(c.name, []).append(row)
    d = next(iter(vectors.values())).vector.numel() if vectors else 0
    n = len(conditions)
    with ExitStack() as stack:
        for layer in sorted(adds):
            rows = torch.zeros(n, d)
            alphas = torch.zeros(n)
            for row in adds[layer]:
                rows[row] = vectors[conditions[row].name].vector
                alphas[row] = conditions[row].alpha
            stack.enter_context(hooks.add_to_resid_pre(model, layer, rows, alpha=alphas))
        spans = {r: vectors[conditions[r].name].basis for r in ablate_rows}
        if any(b is not None for b in spans.values()):
            # Some row ablates a subspace: one subspace hook for every ablation row (a
            # single direction is a one-row basis; unused basis rows are zeros).
            k = max(1 if b is None else b.shape[0] for b in spans.values())
            basis = torch.zeros(n, k, d)
            for row, b in spans.items():
                v = vectors[conditions[row].name].vector
                b = (v / v.norm())[None] if b is None else b
                basis[row, :b.shape[0]] = b
            stack.enter_context(hooks.ablate_subspace(model, basis))
        elif ablate_rows:
            directions = torch.zeros(n, d)
            for row in ablate_rows:
                v = vectors[conditions[row].name].vector
                directions[row] = v / v.norm()
            stack.enter_context(hooks.ablate_direction(model, directions))
        for name, chosen in edit_rows.items():
            # one hook per edit, limited to its rows; the other rows pass through exactly
            mask = torch.zeros(n, dtype=torch.bool)
            mask[chosen] = True
            stack.enter_context(hooks.edit_resid_pre(model, vectors[name].layer,
                                                     vectors[name].edit, rows=mask))
        yield
