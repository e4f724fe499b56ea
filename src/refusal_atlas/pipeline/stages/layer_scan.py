"""``layer_scan``: HR/BC separation and causal effect per layer; fixes the layer later
stages use (config, model preset, scan, or the middle layer). Its activations and induce
layers are work units of the run's executor (on Ray: the run's actors)."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...errors import UserError
from ...layer_scan import (
    causal_candidates,
    causal_choice,
    layer_scan,
    refusal_first_tokens,
)
from ...layer_scan_units import scan_activations, scan_induce_scores
from ...plots.layer_scan import plot_layer_scan
from ...progress import progress_bar
from ..inputs import load_label_records, load_training_pools
from ..stage import Stage, model_settings, settings_of

CAUSAL_MAX_PROMPTS = 16


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg, scan_cfg = ctx.config.activations, ctx.config.layer_scan
    pools = load_training_pools(ctx.stage_dir("pools"))
    by_id = ctx.suite.by_id()
    n_model = ctx.lm.n_layers
    scan = None
    if scan_cfg.enabled:
        layers = list(range(0, n_model + 1, scan_cfg.stride))
        hr_ids = list(dict.fromkeys(i for p in pools.splits.values() for i in p.hr_ids))
        bc_ids = list(dict.fromkeys(i for p in pools.splits.values() for i in p.bc_ids))
        acts = scan_activations(ctx.executor, ctx.lm, ctx.formatter,
                                [by_id[i].text for i in hr_ids + bc_ids], layers, [cfg.position],
                                batch_size=cfg.batch_size, cache=ctx.activation_cache,
                                description="layer scan")[:, :, 0]
        row = {pid: k for k, pid in enumerate(hr_ids + bc_ids)}
        hr, bc = acts[: len(hr_ids)], acts[len(hr_ids):]
        per_split = {name: (acts[[row[i] for i in p.hr_ids]], acts[[row[i] for i in p.bc_ids]])
                     for name, p in pools.splits.items()}
        scan = layer_scan(hr, bc, layers, per_split=per_split, n_model_layers=n_model,
                          max_depth=scan_cfg.max_depth, plateau=scan_cfg.plateau)
        if scan_cfg.method == "causal":
            _causal_choice(ctx, scan, hr, bc, [by_id[i].text for i in bc_ids], hr_ids)
        write_json(out_dir / "layer_scan.json", scan.to_dict())
        plot_layer_scan(scan, out_dir / "layer_scan.png")
    if cfg.layer is not None:
        layer, reason = cfg.layer, "set in the config"
    elif ctx.lm.preset is not None:
        layer, reason = ctx.lm.preset.layer, f"model preset ({ctx.lm.preset.note})"
    elif scan is not None:
        layer, reason = scan.chosen_layer, f"layer scan: {scan.rule}"
    else:
        layer, reason = n_model // 2, "middle layer (layer scan disabled, no preset)"
    if not 0 <= layer <= n_model:
        raise UserError(f"layer {layer} is out of range for {ctx.lm.name} (0..{n_model})")
    write_json(out_dir / "layer.json", {"layer": layer, "position": cfg.position,
                                        "reason": reason, "n_layers": n_model})
    return {"layer": layer, "reason": reason,
            "scan_choice": scan.chosen_layer if scan else None}


def _causal_choice(ctx, scan, hr, bc, bc_texts: list[str], hr_ids: list[str]) -> None:
    scan_cfg = ctx.config.layer_scan
    records = {r.prompt_id: r for r in load_label_records(ctx.stage_dir("labels"))}
    tokens = refusal_first_tokens(ctx.lm.tokenizer, [records[i].response for i in hr_ids
                                                     if i in records])
    if not tokens:
        return
    candidates = causal_candidates(scan, hr, bc, n_model_layers=ctx.lm.n_layers,
                                   max_depth=scan_cfg.max_depth)
    if not candidates:
        return
    prompts = bc_texts[:CAUSAL_MAX_PROMPTS]
    with progress_bar("layer scan: induce", total=len(candidates), unit="layer") as bar:
        scores = scan_induce_scores(ctx.executor, ctx.lm, ctx.formatter, prompts, candidates,
                                    tokens, on_layer=bar.advance)
    causal_choice(scan, scores, [ctx.lm.tokenizer.decode([t]) for t in tokens],
                  n_prompts=len(prompts), n_model_layers=ctx.lm.n_layers,
                  max_depth=scan_cfg.max_depth, induce_fraction=scan_cfg.induce_fraction)


def settings(c) -> dict:
    return {"model": model_settings(c), "layer": c.activations.layer,
            "position": c.activations.position, **settings_of(c.layer_scan)}


STAGE = Stage("layer_scan", ("pools",), settings, run,
              "HR/BC separation per layer; choose the layer",
              outputs=("layer.json", "layer_scan.json"))
