"""``layer_robustness`` (beyond the paper, experiment 4): the split directions at layers
L-w..L+w around the chosen layer L, from one activation pass over the training pools; the
cosine matrix's correlation with L's and the clusters' adjusted Rand index per layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...activations import extract_activations
from ...artifacts import read_json, write_json
from ...beyond import write_findings
from ...beyond.layer_robustness import (
    compare_layers,
    directions_by_layer,
    layer_window,
    robustness_findings,
)
from ...directions import load_directions
from ...progress import console
from ..inputs import load_training_pools
from ..stage import Stage, model_settings, settings_of


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    b = ctx.config.beyond
    cfg = b.layer_robustness
    chosen, position = ctx.layer, ctx.config.activations.position
    layers = layer_window(chosen, cfg.window, ctx.lm.n_layers)
    pools = load_training_pools(ctx.stage_dir("pools"))
    by_id = ctx.suite.by_id()
    ids = list(dict.fromkeys(i for p in pools.splits.values() for i in (*p.hr_ids, *p.bc_ids)))
    row = {pid: k for k, pid in enumerate(ids)}
    # one pass for every layer (the activation cache holds them for later runs)
    acts = extract_activations(ctx.lm, ctx.formatter, [by_id[i].text for i in ids], layers,
                               [position], batch_size=ctx.config.activations.batch_size,
                               cache=ctx.activation_cache,
                               description=f"activations L{layers[0]}-L{layers[-1]}")[:, :, 0]
    split_rows = {name: ([row[i] for i in p.hr_ids], [row[i] for i in p.bc_ids])
                  for name, p in pools.splits.items()}
    dirs = directions_by_layer(acts, layers, split_rows)
    # the directions stage's directions are the chosen layer's: recomputed here they must match
    stored = load_directions(ctx.stage_dir("directions"))
    drift = max(float(np.abs(dirs[chosen][n] - stored[n].vector.double().numpy()).max())
                for n in stored) if not isinstance(dirs[chosen], str) else None
    k = read_json(ctx.stage_dir("geometry") / "geometry.json")["clustering"].get("best_k")
    rows = compare_layers(dirs, chosen, k, n_perm=b.n_perm, seed=b.seed)
    findings = robustness_findings(rows, chosen, k, within=cfg.robust_within,
                                   min_correlation=cfg.min_correlation, min_ari=cfg.min_ari,
                                   n_splits=len(split_rows))
    write_json(out_dir / "layer_robustness.json",
               {"chosen_layer": chosen, "position": position, "layers": layers, "k": k,
                "splits": list(split_rows), "max_abs_diff_vs_directions_stage": drift,
                "rows": rows})
    write_findings(out_dir, findings)
    console.print(f"layer robustness: {findings[0].verdict}")
    return {"verdict": findings[0].verdict, "layers": layers, "k": k}


def settings(cfg) -> dict:
    b = cfg.beyond
    return {"model": model_settings(cfg), "position": cfg.activations.position,
            "layer_robustness": settings_of(b.layer_robustness),
            "stats": {"n_perm": b.n_perm, "seed": b.seed}}


STAGE = Stage("layer_robustness", ("layer_scan", "pools", "directions", "geometry"), settings,
              run, "beyond: cosine matrix and clusters at layers around the chosen one",
              enabled=lambda c: c.beyond.enabled and c.beyond.layer_robustness.enabled,
              disabled_by="beyond.enabled / beyond.layer_robustness.enabled = false",
              outputs=("layer_robustness.json", "findings.json"))
