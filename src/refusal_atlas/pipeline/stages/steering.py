"""``steering``: steer along every direction over the alphas; RR / ORR, trade-off gap."""

from __future__ import annotations

from pathlib import Path

from ...metrics import compact_summary
from ...progress import console
from ...sweeps import resolve_alphas, steering_grid, vectors_from_directions
from ..stage import Stage
from .sweep import check_sweep_inputs, chosen_directions, one_line, run_sweep_stage, sweep_settings


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.steering
    directions = chosen_directions(ctx)
    alphas, alpha_info = resolve_alphas(cfg.alphas, directions,
                                        reference_gap=cfg.auto_reference_gap,
                                        auto_alphas=cfg.auto_alphas)
    conditions = steering_grid(list(directions), alphas, layers=cfg.layers)
    summary = compact_summary(run_sweep_stage(
        ctx, out_dir, vectors_from_directions(directions), conditions, alpha_info=alpha_info,
        description="steering", record={"directions": list(directions)}))
    console.print(one_line(summary, ablation=False))
    return summary


def settings(cfg) -> dict:
    s = cfg.steering
    return {"alphas": s.alphas, "auto_reference_gap": s.auto_reference_gap,
            "auto_alphas": s.auto_alphas, "directions": s.directions, "layers": s.layers,
            "max_new_tokens": s.max_new_tokens, "judge": s.judge,
            "judge_options": s.judge_options, **sweep_settings(s)}


STAGE = Stage("steering", ("directions", "test_set", "labels"), settings, run,
              "steer along every direction over the alphas; RR / ORR",
              check=check_sweep_inputs, outputs=("conditions.json", "results.jsonl", "metrics.json"))
