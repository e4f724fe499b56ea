"""``subspace`` (beyond the paper, experiment 2): PCA of the split directions; ablate the
top-k components and the whole span at every layer; RR / ORR against k beside
single-direction ablation (the ``ablation`` stage's rows when it ran on the same prompts and
judge, else generated here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...artifacts import write_json
from ...beyond import write_findings
from ...beyond.subspace import (
    principal_components,
    subspace_findings,
    subspace_rates,
    subspace_vectors,
)
from ...progress import console
from ...sweeps import BASELINE, Condition, ResultsStore, vectors_from_directions
from ..inputs import run_directions
from ..stage import Stage, settings_of
from .sweep import check_sweep_inputs, run_sweep_stage, sweep_prompts, sweep_settings


def _ablation_rows(ctx, prompt_ids: set[str], judge_name: str, splits) -> list[dict] | None:
    """The ``ablation`` stage's rows of ``splits`` when it is done on the same prompts and
    judge (else None: the single directions are ablated here)."""
    if not ctx.run.done_marker("ablation"):
        return None
    judged = ResultsStore(ctx.stage_dir("ablation")).judged(judge_name)
    rows = [judged.get((f"ablate/{s}", p)) for s in splits for p in prompt_ids]
    return None if any(r is None for r in rows) else rows


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    b = ctx.config.beyond
    sub = b.subspace
    directions = run_directions(ctx)
    names = list(directions)
    layer = next(iter(directions.values())).layer
    pca = principal_components(np.stack([d.vector.float().numpy() for d in directions.values()]))
    vectors, ks = subspace_vectors(pca["components"], pca["rank"], layer, max_k=sub.max_k)
    judge = ctx.judge(ctx.config.steering.judge, ctx.config.steering.judge_options)
    prompt_ids = {p.id for p in sweep_prompts(ctx)}
    reused = _ablation_rows(ctx, prompt_ids, judge.name, names)
    conditions = [BASELINE] + [Condition("ablate", n) for n in vectors]
    if reused is None:  # single-direction ablation as conditions of this sweep
        vectors.update(vectors_from_directions(directions))
        conditions += [Condition("ablate", n) for n in names]
    run_sweep_stage(ctx, out_dir, vectors, conditions, alpha_info=None,
                              description="subspace ablation", ablation=True,
                              record={"subspaces": ks, "splits": names,
                                      "single_from": "ablation" if reused else "this stage"})
    rows = list(ResultsStore(out_dir).judged(judge.name).values()) + (reused or [])
    single = {s: f"ablate/{s}" for s in names}
    rates = subspace_rates(rows, ["baseline", *(f"ablate/{n}" for n in ks), *single.values()],
                           n_boot=b.n_boot, n_perm=b.n_perm, seed=b.seed)
    findings = subspace_findings(pca, rates, ks, single, variance_target=sub.variance_target)
    write_json(out_dir / "subspace.json", {
        "layer": layer, "splits": names, "subspaces": ks,
        "pca": {k: v for k, v in pca.items() if k != "components"}, "rates": rates,
        "single_from": "ablation" if reused else "subspace",
        "n_conditions": len(conditions)})
    write_findings(out_dir, findings)
    for f in findings:
        console.print(f"subspace ({f.subject}): {f.verdict}")
    return {"verdicts": {f.subject: f.verdict for f in findings}, "subspaces": ks}


def settings(cfg) -> dict:
    s = cfg.steering
    b = cfg.beyond
    return {"max_new_tokens": s.max_new_tokens, "judge": s.judge, "judge_options": s.judge_options,
            **sweep_settings(s), "subspace": settings_of(b.subspace),
            "stats": {"n_boot": b.n_boot, "n_perm": b.n_perm, "seed": b.seed}}


STAGE = Stage("subspace", ("directions", "test_set", "labels", "ablation"), settings, run,
              "beyond: ablate the top-k principal components of the directions; RR / ORR vs k",
              enabled=lambda c: c.beyond.enabled and c.beyond.subspace.enabled,
              disabled_by="beyond.enabled / beyond.subspace.enabled = false",
              check=check_sweep_inputs,
              outputs=("conditions.json", "results.jsonl", "metrics.json", "subspace.json",
                       "findings.json"))
