"""Steering and ablation sweeps: a grid of conditions, batched per row, resumable.

The paper's central experiment steers along every category's direction over a range of
alphas (and ablates every direction), judges every response and compares the refusal
rate on harmful prompts (RR) with the over-refusal rate on benign prompts (ORR).
See ``docs/steering.md``.

* :mod:`.conditions` - :class:`Condition` (``baseline``, ``steer``, ``vector``, ``ablate``,
  ``edit``) with a stable id; grids; alphas; choosing directions.
* :mod:`.vectors` - :class:`LayerVector` (a vector and the ``resid_pre`` layer it acts
  at; not a Direction) and the ``{name: LayerVector}`` mapping conditions name.
* :mod:`.interventions` - :func:`row_interventions`: a batch's conditions as per-row hooks.
* :mod:`.prompts` - :class:`SweepPrompt` and where sweep prompts come from.
* :mod:`.batches` - rows, batches, the plan and :class:`BatchGenerator`.
* :mod:`.executors` - who runs the batches (:data:`EXECUTORS`, :func:`get_executor`).
* :mod:`.store` - :class:`ResultsStore`: append-only, resumable JSONL.
* :mod:`.judging` - inline judging and the resumable second pass.
* :mod:`.engine` - :func:`run_sweep`.
* :mod:`.summary` - ``metrics.json`` of a sweep; :mod:`.rejudge` - a second judge.

Example::

    from refusal_atlas import sweeps

    vectors = sweeps.vectors_from_directions(directions)
    conditions = sweeps.steering_grid(list(vectors), [0, 5, 10])
    result = sweeps.run_sweep(lm, formatter, prompts, conditions, vectors, out_dir,
                              max_new_tokens=48, batch_size=32, judge=get_judge("substring"))
"""

from .batches import (
    BatchGenerator,
    BatchResult,
    GenerateBatch,
    SweepBatch,
    SweepRow,
    plan_batches,
)
from .conditions import (
    ADDITIVE,
    BASELINE,
    KINDS,
    Condition,
    ablation_grid,
    format_alpha,
    parse_alphas,
    resolve_alphas,
    round_sig,
    select_directions,
    steering_grid,
    unique_conditions,
)
from .engine import SweepResult, run_sweep
from .executors import EXECUTORS, Executor, LocalExecutor, get_executor
from .interventions import row_interventions
from .judging import judge_pass, judges_inline
from .prompts import SweepPrompt, controlled_test_prompts, file_prompts
from .rejudge import rejudge_rows
from .store import RESPONSES_FILE, RESULTS_FILE, ResultsStore
from .summary import GAP_UNCERTAINTY, sweep_metrics
from .vectors import (
    LayerVector,
    check_conditions,
    latent_sum_vector,
    resolved_layer,
    span_vector,
    vectors_from_directions,
)

__all__ = [
    "ADDITIVE", "BASELINE", "EXECUTORS", "GAP_UNCERTAINTY", "KINDS", "RESPONSES_FILE",
    "RESULTS_FILE", "BatchGenerator", "BatchResult", "Condition", "Executor", "GenerateBatch",
    "LayerVector", "LocalExecutor", "ResultsStore", "SweepBatch", "SweepPrompt", "SweepResult",
    "SweepRow", "ablation_grid", "check_conditions", "controlled_test_prompts", "file_prompts",
    "format_alpha", "get_executor", "judge_pass", "judges_inline", "latent_sum_vector",
    "parse_alphas", "plan_batches", "rejudge_rows", "resolve_alphas", "resolved_layer",
    "round_sig", "row_interventions", "run_sweep", "select_directions", "span_vector",
    "steering_grid",
    "sweep_metrics", "unique_conditions", "vectors_from_directions",
]
