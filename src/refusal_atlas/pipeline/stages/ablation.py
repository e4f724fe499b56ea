"""``ablation``: project each direction out at every layer; RR / ORR against the baseline."""

from __future__ import annotations

from pathlib import Path

from ...metrics import compact_summary
from ...progress import console
from ...sweeps import ablation_grid, vectors_from_directions
from ..stage import Stage
from .sweep import check_sweep_inputs, chosen_directions, one_line, run_sweep_stage, sweep_settings


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    directions = chosen_directions(ctx)
    summary = compact_summary(run_sweep_stage(
        ctx, out_dir, vectors_from_directions(directions), ablation_grid(list(directions)),
        alpha_info=None, description="ablation", ablation=True,
        record={"directions": list(directions)}))
    console.print(one_line(summary, ablation=True))
    return summary


def settings(cfg) -> dict:
    s = cfg.steering
    return {"directions": s.directions, "max_new_tokens": s.max_new_tokens, "judge": s.judge,
            "judge_options": s.judge_options, **sweep_settings(s)}


STAGE = Stage("ablation", ("directions", "test_set", "labels"), settings, run,
              "ablate every direction; RR / ORR", enabled=lambda c: bool(c.steering.ablation),
              disabled_by="steering.ablation = false",
              check=check_sweep_inputs, outputs=("conditions.json", "results.jsonl", "metrics.json"))
