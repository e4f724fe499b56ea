"""``tail_latents``: steer with each split's tail SAE latents only, and remove the tail's
decoder terms (core and SAE error kept); RR / ORR with CIs and refusal styles, and the
verdict "style without rate" per split (issue 14, experiment 3)."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...beyond.findings import write_findings
from ...beyond.style_rate import pick_alpha, public_table, style_rate_table
from ...beyond.tail import removal_name, tail_bank, tail_findings
from ...errors import UserError
from ...progress import console, warn
from ...sae.steering import latent_name
from ...style import RuleStyleClassifier
from ...sweeps import Condition, resolve_alphas, select_directions, steering_grid
from ..inputs import run_analysis, run_directions, run_sae
from ..stage import Stage
from .style_vs_rate import judged_rows, style_rate_settings
from .sweep import check_sweep_inputs, run_sweep_stage

RESULT_JSON = "tail_latents.json"


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg, beyond, st = ctx.config.beyond.tail_latents, ctx.config.beyond, ctx.config.steering
    device = next(ctx.lm.model.parameters()).device
    sae, meta = run_sae(ctx.run.root, device=str(device))
    analysis = run_analysis(ctx.run.root)
    layer = int(meta["hook_layer"])
    splits = list(analysis.splits)[:cfg.max_splits]
    bank, described, warnings, with_tail = tail_bank(sae, analysis, splits, layer)
    warn(warnings)
    if not with_tail:
        raise UserError("no split has tail latents to steer with or remove: "
                        + "; ".join(warnings))
    directions = select_directions(run_directions(ctx), st.directions)
    alphas, alpha_info = resolve_alphas(cfg.alphas, directions,
                                        reference_gap=st.auto_reference_gap,
                                        auto_alphas=cfg.auto_alphas)
    alpha_info["vector_norm"] = "unit (core and tail sums alike: matched norms)"
    steered = [n for n in bank if not n.startswith("sae_notail:")]
    conditions = steering_grid(steered, alphas, kind="vector") + [
        Condition("edit", removal_name(s)) for s in with_tail]
    run_sweep_stage(ctx, out_dir, bank, conditions, alpha_info=alpha_info,
                    description="tail latents",
                    record={"layer": layer, "splits": with_tail, "vectors": described})
    table = style_rate_table(judged_rows(out_dir, conditions), RuleStyleClassifier(),
                             n_boot=beyond.n_boot, seed=beyond.seed)
    alpha = pick_alpha(alphas, cfg.verdict_alpha)
    findings = tail_findings(table, with_tail, alpha, min_refusals=cfg.min_refusals,
                             n_perm=beyond.n_perm, seed=beyond.seed)
    write_findings(out_dir, findings)
    write_json(out_dir / RESULT_JSON, {
        "layer": layer, "alphas": alpha_info, "verdict_alpha": alpha, "classifier": "rules",
        "tails": {s: bank[latent_name("tail", s)].meta["latents"] for s in with_tail},
        "warnings": warnings, "conditions": public_table(table)})
    console.print(f"tail latents: {findings[-1].verdict}")
    return {"verdict": findings[-1].verdict,
            "per_test": {f.subject: f.verdict for f in findings[:-1]}}


def settings(cfg) -> dict:
    return style_rate_settings(cfg, cfg.beyond.tail_latents)


STAGE = Stage("tail_latents", ("sae_analysis", "sae", "directions", "test_set", "labels"),
              settings, run,
              "steer with each split's tail SAE latents; remove them; style vs rate",
              enabled=lambda c: bool(c.beyond.enabled and c.beyond.tail_latents.enabled
                                     and c.sae.enabled),
              disabled_by="beyond.enabled = false, beyond.tail_latents.enabled = false or "
                          "sae.enabled = false",
              check=check_sweep_inputs,
              outputs=("conditions.json", "results.jsonl", "metrics.json", RESULT_JSON,
                       "findings.json"))
