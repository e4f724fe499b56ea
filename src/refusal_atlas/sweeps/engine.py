"""The sweep engine: generate and judge every (condition, prompt) row, resumable.

Every (condition, prompt) is a row. Rows are planned into batches
(:func:`~.batches.plan_batches`); an executor runs the batches still missing from the
store and yields their results; every finished row is appended to the
:class:`~.store.ResultsStore` at once (judged inline by instant judges), and a second pass
judges what a slow judge has not judged yet. Additive conditions with ``alpha == 0`` are
the baseline by construction (the hook adds exact zeros): they are generated once, as
``baseline``, and stored under their own id too (``generated_as`` says so). Rows another
sweep already generated with the same model, prompts and budget (``reuse``: a run's
baseline, shared by its steering, ablation and SAE-steering sweeps) are stored as they
are and not generated again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UserError
from ..progress import progress_bar
from .backoff import OOMBackoff
from .batches import BatchGenerator, GenerateBatch, SweepBatch, plan_batches
from .conditions import Condition, unique_conditions
from .executors import Executor, LocalExecutor
from .judging import judge_pass, judges_inline, with_judgement
from .prompts import SweepPrompt
from .store import ResultsStore
from .vectors import LayerVector, check_conditions, resolved_layer


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Args:
        rows: one judged row per (condition, prompt), in condition then prompt order.
        stats: sizes, timings and modes of the sweep (``metrics.json``'s ``sweep``).
    """

    rows: list[dict]
    """One judged row per (condition, prompt), in condition then prompt order."""
    stats: dict[str, Any]


def _response_row(c: Condition, generated_as: Condition, p: SweepPrompt,
                  vectors: Mapping[str, LayerVector], response: str, n_tokens: int) -> dict:
    return {"condition": c.id, "kind": c.kind, "direction": c.name, "alpha": c.alpha,
            "layer": resolved_layer(c, vectors), "generated_as": generated_as.id,
            "prompt_id": p.id, "split": p.split, "group": p.group, "harmful": p.harmful,
            "prompt": p.text, "response": response, "n_tokens": int(n_tokens)}


def _store_reused(store: ResultsStore, have: dict, reuse: Sequence[Mapping[str, Any]],
                  source: str, aliases: Mapping[str, list[Condition]],
                  by_id: Mapping[str, SweepPrompt],
                  vectors: Mapping[str, LayerVector]) -> set[tuple[str, str]]:
    """Store the reused rows of this grid (unjudged: the judge pass judges them) and return
    their (generated condition id, prompt id) keys, which generation skips."""
    keys: set[tuple[str, str]] = set()
    new_rows: list[dict] = []
    for row in reuse:
        cid, pid = row["condition"], row["prompt_id"]
        if cid not in aliases or pid not in by_id or (cid, pid) in keys:
            continue
        keys.add((cid, pid))
        first = aliases[cid][0]
        generated_as = first if first.id == cid else first.canonical()
        for a in aliases[cid]:
            if (a.id, pid) not in have:
                new = _response_row(a, generated_as, by_id[pid], vectors, row["response"],
                                    row["n_tokens"])
                new["reused_from"] = source
                new_rows.append(new)
    store.append(store.responses_path, new_rows)
    for x in new_rows:
        have[store.key(x)] = x
    return keys


def run_sweep(lm, formatter, prompts: Sequence[SweepPrompt], conditions: Sequence[Condition],
              vectors: Mapping[str, LayerVector], folder: str | Path, *, max_new_tokens: int,
              batch_size: int, judge, executor: Executor | None = None,
              generate_batch: GenerateBatch | None = None, judge_mode: str = "auto",
              dedupe: bool = True, judge_chunk: int = 256,
              unit_batches: int = 1, reuse: Sequence[Mapping[str, Any]] = (),
              reuse_from: str = "another sweep",
              description: str = "sweep") -> SweepResult:
    """Generate and judge every (condition, prompt) row, resuming from ``folder``.

    Args:
        lm: a loaded model (:func:`refusal_atlas.models.load_model`).
        formatter: the model's :class:`~refusal_atlas.chat.ChatFormatter`.
        prompts: :class:`SweepPrompt` s with unique ids.
        conditions: the grid (:func:`steering_grid`, :func:`ablation_grid`, or any list).
        vectors: ``{name: LayerVector}`` the conditions name.
        folder: the results store (``results.jsonl``, ``responses.jsonl``); a re-run with
            the same folder resumes.
        max_new_tokens: generation budget per row.
        batch_size: rows decoded at once (speed only).
        unit_batches: a work unit (what an executor runs and the store resumes by) holds
            this many batches' rows; within it rows join the running batch as others finish
            (:mod:`refusal_atlas.continuous`), so larger units keep batches fuller and
            compute the shared prompt prefix once per condition for more prompts (the
            pipeline's ``executor.unit_batches``, 4); 1: a unit is one batch.
        judge: a judge (:func:`refusal_atlas.judges.get_judge`).
        executor: runs the batches; default :class:`LocalExecutor`.
        generate_batch: generates one batch; default a :class:`BatchGenerator` on ``lm``.
            A batch that runs out of memory is halved and retried (:class:`OOMBackoff`).
        judge_mode: ``auto`` (inline for instant judges), ``inline`` or ``two_pass``.
        dedupe: generate alpha = 0 conditions once as the baseline; ``False`` generates
            them with their (zero) hooks (for tests and benchmarks).
        judge_chunk: rows per judge call in the second pass.
        reuse: rows (``condition``, ``prompt_id``, ``response``, ``n_tokens``) generated
            elsewhere with the same model, prompts and ``max_new_tokens``, e.g. the
            baseline of a sweep over the same prompts. Those of this grid's generated
            rows are stored (with ``reused_from``), judged by ``judge`` and left out of
            generation; the caller vouches that they match.
        reuse_from: where ``reuse`` came from, recorded in each reused row.
        description: progress bar label.

    Example::

        vectors = vectors_from_directions(load_directions(run / "directions"))
        conditions = steering_grid(list(vectors), [0, 5, 10])
        result = run_sweep(lm, formatter, prompts, conditions, vectors, out_dir,
                           max_new_tokens=48, batch_size=32, judge=get_judge("substring"))
    """
    conditions = unique_conditions(conditions)
    if not conditions:
        raise UserError("a sweep needs at least one condition")
    if not prompts:
        raise UserError("a sweep needs at least one prompt")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise UserError("sweep prompt ids must be unique")
    check_conditions(conditions, vectors, lm.model if lm is not None else None)
    executor = executor or LocalExecutor()
    if unit_batches < 1:
        raise UserError(f"unit_batches must be at least 1, got {unit_batches}")
    generate_batch = OOMBackoff(generate_batch or BatchGenerator(
        lm, formatter, vectors, max_new_tokens=max_new_tokens, max_active=batch_size))
    inline = judges_inline(judge, judge_mode)
    store = ResultsStore(folder)
    store.folder.mkdir(parents=True, exist_ok=True)
    by_id = {p.id: p for p in prompts}

    aliases: dict[str, list[Condition]] = {}
    for c in conditions:
        aliases.setdefault((c.canonical() if dedupe else c).id, []).append(c)
    have = store.generated()
    reused = _store_reused(store, have, reuse, reuse_from, aliases, by_id, vectors)
    lengths = {p.id: len(formatter.encode(p.text)) for p in prompts}
    batches = plan_batches(conditions, prompts, lengths, batch_size * unit_batches,
                           dedupe=dedupe, skip=reused)

    # ---- pass 1: generation (judged inline for instant judges)
    def missing(batch: SweepBatch) -> bool:
        return any((a.id, r.prompt_id) not in have
                   for r in batch.rows for a in aliases[r.condition.id])

    todo = [b for b in batches if missing(b)]
    n_rows = sum(len(b.rows) for b in batches)
    n_todo = sum(len(b.rows) for b in todo)
    gen_seconds, gen_tokens, gen_rows, oom_splits = 0.0, 0, 0, 0
    wall = time.perf_counter()
    with progress_bar(f"{description}: generate", total=n_rows, unit="rows") as bar:
        bar.advance(n_rows - n_todo)
        for result in executor.run(todo, generate_batch):
            new_rows: list[dict] = []
            for r, text, n_tok in zip(result.batch.rows, result.responses, result.n_tokens):
                for a in aliases[r.condition.id]:
                    if (a.id, r.prompt_id) not in have:
                        new_rows.append(_response_row(a, r.condition, by_id[r.prompt_id],
                                                      vectors, text, n_tok))
                gen_tokens += n_tok
            gen_rows += len(result.batch.rows)
            gen_seconds += result.seconds
            oom_splits += result.oom_splits
            if inline and new_rows:
                verdicts = judge.judge([by_id[x["prompt_id"]].text for x in new_rows],
                                       [x["response"] for x in new_rows])
                new_rows = [with_judgement(x, j) for x, j in zip(new_rows, verdicts)]
                store.append(store.results_path, new_rows)
            else:
                store.append(store.responses_path, new_rows)
            for x in new_rows:
                have[store.key(x)] = x
            bar.advance(len(result.batch.rows))
    wall = time.perf_counter() - wall

    lost = sum((c.id, p.id) not in have for c in conditions for p in prompts)
    if lost:
        raise RuntimeError(f"executor {getattr(executor, 'name', executor)!r} returned no result "
                           f"for {lost} rows; re-run to resume")

    # ---- pass 2: judge what is generated but not judged by this judge
    judged = store.judged(judge.name)
    pending = [have[(c.id, p.id)] for c in conditions for p in prompts
               if (c.id, p.id) not in judged]
    if pending:
        judge_pass(judge, store, pending, by_id, judge_chunk, description)
        judged = store.judged(judge.name)

    rows = []
    for c in conditions:
        for p in prompts:
            row = judged.get((c.id, p.id))
            if row is None:
                raise RuntimeError(f"sweep row {c.id} / {p.id} is missing after the sweep")
            rows.append(row)
    # The keys keep their first names ("units", "worker"): metrics.json of earlier runs and
    # the report read them.
    stats = {
        "n_conditions": len(conditions), "n_prompts": len(prompts),
        "n_result_rows": len(rows), "n_generated_rows_planned": n_rows,
        "n_generated_rows_this_run": gen_rows, "n_units": len(batches),
        "n_units_this_run": len(todo), "dedupe_alpha0": dedupe,
        "n_aliased_rows": len(conditions) * len(prompts) - n_rows - len(reused),
        "n_reused_rows": len(reused),
        "generation_seconds": round(wall, 3), "worker_seconds": round(gen_seconds, 3),
        "new_tokens": gen_tokens,
        "rows_per_s": round(gen_rows / wall, 3) if gen_rows and wall > 0 else None,
        "tokens_per_s": round(gen_tokens / wall, 3) if gen_tokens and wall > 0 else None,
        "judge": judge.name, "judge_mode": "inline" if inline else "two_pass",
        "executor": getattr(executor, "name", type(executor).__name__),
        "oom_splits": oom_splits,
    }
    return SweepResult(rows, stats)
