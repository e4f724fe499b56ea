"""``style_vs_rate``: steer along each split's direction d_c, the shared axis s and the
specific part r_c at matched norms; RR / ORR with CIs and refusal styles per condition, and
the verdict "style without rate" per split (issue 14, experiment 1)."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import read_json, write_json
from ...beyond.axes import SHARED_NAME, axes_findings, axis_vectors, shared_axes
from ...beyond.findings import write_findings
from ...beyond.style_rate import pick_alpha, public_table, style_rate_table
from ...progress import console
from ...style import RuleStyleClassifier
from ...sweeps import ResultsStore, resolve_alphas, select_directions, steering_grid
from ..inputs import run_directions
from ..stage import Stage, settings_of
from .sweep import check_sweep_inputs, prompts_setting, run_sweep_stage

RESULT_JSON = "style_vs_rate.json"


def judged_rows(out_dir: Path, conditions) -> list[dict]:
    """The judged rows of ``conditions`` in a sweep stage's store (by the judge it ran with)."""
    judge = read_json(out_dir / "conditions.json")["judge"]
    judged = ResultsStore(out_dir).judged(judge)
    ids = {c.id for c in conditions}
    return [row for (cid, _), row in judged.items() if cid in ids]


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg, beyond, st = ctx.config.beyond.style_vs_rate, ctx.config.beyond, ctx.config.steering
    directions = run_directions(ctx)
    axes = shared_axes(directions)
    splits = [s for s in select_directions(directions, st.directions)][:cfg.max_splits]
    vectors = axis_vectors(axes, directions, splits)
    alphas, alpha_info = resolve_alphas(cfg.alphas, directions,
                                        reference_gap=st.auto_reference_gap,
                                        auto_alphas=cfg.auto_alphas)
    alpha_info["vector_norm"] = "unit (d_c, s and r_c alike: matched norms)"
    conditions = steering_grid([SHARED_NAME, *(n for n in vectors if n != SHARED_NAME)], alphas)
    run_sweep_stage(ctx, out_dir, vectors, conditions, alpha_info=alpha_info,
                    description="style vs rate",
                    record={"splits": splits, "axes": axes.summary()})
    table = style_rate_table(judged_rows(out_dir, conditions), RuleStyleClassifier(),
                             n_boot=beyond.n_boot, seed=beyond.seed)
    alpha = pick_alpha(alphas, cfg.verdict_alpha)
    findings = axes_findings(table, axes, splits, alpha, min_refusals=cfg.min_refusals,
                             n_perm=beyond.n_perm, seed=beyond.seed)
    write_findings(out_dir, findings)
    write_json(out_dir / RESULT_JSON, {"axes": axes.summary(), "alphas": alpha_info,
                                       "verdict_alpha": alpha, "classifier": "rules",
                                       "conditions": public_table(table)})
    summary = findings[-1]
    console.print(f"style vs rate: {summary.verdict}")
    return {"verdict": summary.verdict, "cos_shared_pc1": axes.cos_shared_pc1,
            "pc1_variance": axes.pc1_variance,
            "per_split": {f.subject: f.verdict for f in findings[:-1]}}


def style_rate_settings(cfg, section) -> dict:
    """The settings a style-vs-rate sweep depends on: its own ``section`` (``beyond.
    style_vs_rate`` or ``beyond.tail_latents``), the shared statistics, and the steering
    settings it borrows (alpha scale, directions, budget, judge, prompts)."""
    st = cfg.steering
    return {**settings_of(section), "n_boot": cfg.beyond.n_boot,
            "n_perm": cfg.beyond.n_perm, "seed": cfg.beyond.seed,
            "auto_reference_gap": st.auto_reference_gap, "directions": st.directions,
            "max_new_tokens": st.max_new_tokens, "judge": st.judge,
            "judge_options": st.judge_options, **prompts_setting(st.prompts)}


def settings(cfg) -> dict:
    return style_rate_settings(cfg, cfg.beyond.style_vs_rate)


STAGE = Stage("style_vs_rate", ("directions", "test_set", "labels"), settings, run,
              "steer along d_c, the shared axis s and the specific part r_c; style vs rate",
              enabled=lambda c: c.beyond.enabled and c.beyond.style_vs_rate.enabled,
              disabled_by="beyond.enabled = false or beyond.style_vs_rate.enabled = false",
              check=check_sweep_inputs,
              outputs=("conditions.json", "results.jsonl", "metrics.json", RESULT_JSON,
                       "findings.json"))
