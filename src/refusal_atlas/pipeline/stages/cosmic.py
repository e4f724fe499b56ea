"""``cosmic`` (beyond the paper, experiment 5): an output-free, COSMIC-style choice of layer
and direction from the training pools' activations and hooked forward passes (no
generation), against the run's layer and directions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...activations import extract_activations
from ...artifacts import write_json, write_tensors
from ...beyond import write_findings
from ...beyond.cosmic import (
    candidate_directions,
    cosmic_findings,
    low_similarity_layers,
    score_candidates,
    select_layer,
)
from ...progress import console, progress_bar
from ..inputs import load_training_pools, run_directions
from ..stage import Stage, model_settings, settings_of


def _split_ids(ids: list[str], n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``n`` scoring prompts and the rest for the candidates (all of them when too few are
    left), as COSMIC selects on other prompts than it computes candidates from."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    score, rest = order[:n], order[n:]
    return score, (rest if len(rest) >= 2 else order)


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    b = ctx.config.beyond
    cfg = b.cosmic
    position = ctx.config.activations.position
    n_layers = ctx.lm.n_layers
    pools = load_training_pools(ctx.stage_dir("pools"))
    by_id = ctx.suite.by_id()
    hr = list(dict.fromkeys(i for p in pools.splits.values() for i in p.hr_ids))
    bc = list(dict.fromkeys(i for p in pools.splits.values() for i in p.bc_ids))
    rng = np.random.default_rng(b.seed)
    hr_score, hr_cand = _split_ids(hr, cfg.n_prompts, rng)
    bc_score, bc_cand = _split_ids(bc, cfg.n_prompts, rng)
    texts = {i: by_id[i].text for i in dict.fromkeys(hr_cand + bc_cand)}
    row = {pid: k for k, pid in enumerate(texts)}
    # one pass: every resid_pre layer, at the run's position and the last token
    acts = extract_activations(ctx.lm, ctx.formatter, list(texts.values()),
                               list(range(n_layers + 1)), [position, -1],
                               batch_size=ctx.config.activations.batch_size,
                               cache=ctx.activation_cache, description="cosmic activations")
    h_rows, b_rows = [row[i] for i in hr_cand], [row[i] for i in bc_cand]
    block_outputs = list(range(1, n_layers + 1))   # resid_pre l+1 = output of block l
    eval_layers, sims = low_similarity_layers(acts[h_rows][:, 1:, 1], acts[b_rows][:, 1:, 1],
                                              block_outputs, cfg.low_similarity_fraction)
    cand_layers = [x for x in range(n_layers) if x < int(n_layers * cfg.max_layer_fraction)]
    raw = candidate_directions(acts[h_rows][:, cand_layers, 0], acts[b_rows][:, cand_layers, 0],
                               cand_layers)
    candidates = {x: v for x, v in raw.items() if float(v.norm()) > 1e-6}
    with progress_bar("cosmic scores", total=len(candidates), unit="layer") as bar:
        scores = score_candidates(ctx.lm, ctx.formatter, [by_id[i].text for i in hr_score],
                                  [by_id[i].text for i in bc_score], candidates, eval_layers,
                                  batch_size=ctx.config.activations.batch_size,
                                  progress=lambda: bar.advance(1))
    layer, kept = select_layer(scores, kl_threshold=cfg.kl_threshold)
    ours = run_directions(ctx)
    our_layer = ctx.layer
    mine = candidates[layer].double()
    mine = mine / mine.norm()
    units = {n: d.vector.double() / d.vector.double().norm() for n, d in ours.items()}
    pooled = torch.stack(list(units.values())).mean(0)
    pooled = pooled / pooled.norm()
    cosines = {"pooled": float(mine @ pooled), **{n: float(mine @ u) for n, u in units.items()}}
    at_ours = raw.get(our_layer)
    same_layer = (float(at_ours.double() @ pooled / at_ours.double().norm())
                  if at_ours is not None and float(at_ours.norm()) > 1e-6 else None)
    findings = cosmic_findings(layer, our_layer, cosines, agree_layers=cfg.agree_layers,
                               agree_cosine=cfg.agree_cosine,
                               details={"eval_layers": eval_layers,
                                        "candidate_at_our_layer_vs_pooled": same_layer})
    write_json(out_dir / "cosmic.json", {
        "cosmic_layer": layer, "our_layer": our_layer, "position": position,
        "readout_position": -1, "eval_layers": eval_layers, "similarities": sims,
        "candidate_layers": list(candidates), "kept_after_kl": kept,
        "kl_threshold": cfg.kl_threshold, "scores": {str(k): v for k, v in scores.items()},
        "cosines": cosines, "candidate_at_our_layer_vs_pooled": same_layer,
        "n_score_prompts": {"harmful": len(hr_score), "harmless": len(bc_score)},
        "n_candidate_prompts": {"harmful": len(hr_cand), "harmless": len(bc_cand)}})
    write_tensors(out_dir / "direction.safetensors", {"direction": mine.float().contiguous()},
                  metadata={"layer": str(layer), "position": str(position)})
    write_findings(out_dir, findings)
    console.print(f"cosmic: layer {layer} (ours {our_layer}), cosine with our pooled direction "
                  f"{cosines['pooled']:.2f}: {findings[0].verdict}")
    return {"verdict": findings[0].verdict, "cosmic_layer": layer, "our_layer": our_layer}


def settings(cfg) -> dict:
    b = cfg.beyond
    return {"model": model_settings(cfg), "position": cfg.activations.position,
            "cosmic": settings_of(b.cosmic), "seed": b.seed}


STAGE = Stage("cosmic", ("layer_scan", "pools", "directions"), settings, run,
              "beyond: output-free (COSMIC) choice of layer and direction vs ours",
              enabled=lambda c: c.beyond.enabled and c.beyond.cosmic.enabled,
              disabled_by="beyond.enabled / beyond.cosmic.enabled = false",
              outputs=("cosmic.json", "direction.safetensors", "findings.json"))
