"""``sae_analysis``: SAE latents at the analysis position of every labelled prompt.

Per split: scores, top-K, popularity, intersections, shared core and long tail, and the
top-activating prompts of the top latents (:mod:`refusal_atlas.sae.analysis`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...activations import extract_activations, load_activation_table
from ...artifacts import write_json, write_tensors
from ...plots.sae import plot_core_scores, plot_overlap, plot_popularity
from ...progress import console
from ...sae.analysis import PromptInfo, analyze_latents, encode_rows
from ...sae.describe import describe_analysis, latents_markdown
from ..inputs import ANALYSIS_JSON, load_label_records, load_training_pools, run_sae
from ..stage import Stage
from .activations import ACTS_FILE


def _analysis_activations(ctx, layer: int, position: int) -> tuple[list[str], torch.Tensor]:
    """Activations of every labelled prompt at (layer, position): the activations stage's
    table when it matches, else extracted (cached)."""
    table = ctx.stage_dir("activations") / ACTS_FILE
    if table.exists():
        ids, acts, meta = load_activation_table(table)
        if int(meta.get("layer", -1)) == layer and int(meta.get("position", 0)) == position:
            return ids, acts
    labelled = {r.prompt_id for r in load_label_records(ctx.stage_dir("labels"))
                if r.label is not None}
    prompts = [p for p in ctx.suite.all_prompts() if p.id in labelled]
    acts = extract_activations(ctx.lm, ctx.formatter, [p.text for p in prompts], [layer],
                               [position], batch_size=ctx.config.activations.batch_size,
                               cache=ctx.activation_cache,
                               description=f"SAE analysis: L{layer} position {position}")
    return [p.id for p in prompts], acts[:, 0, 0]


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.sae.analysis
    sae, meta = run_sae(ctx.run.root)
    layer, position = int(meta["hook_layer"]), ctx.config.activations.position
    ids, acts = _analysis_activations(ctx, layer, position)
    latents = encode_rows(sae, acts)
    by_id = ctx.suite.by_id()
    label_of = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    prompts = [PromptInfo(pid, by_id[pid].split, label_of.get(pid), by_id[pid].text)
               for pid in ids]
    row = {pid: i for i, pid in enumerate(ids)}
    pools = load_training_pools(ctx.stage_dir("pools"))
    split_rows = {}
    skipped = []
    for split in pools.splits:
        hr = [row[p.id] for p in ctx.suite.splits[split]
              if label_of.get(p.id) == "HR" and p.id in row]
        bc = [row[p.id] for p in ctx.suite.benign[ctx.suite.benign_for[split]]
              if label_of.get(p.id) == "BC" and p.id in row]
        if hr and bc:
            split_rows[split] = (hr, bc)
        else:
            skipped.append(split)
    result = analyze_latents(
        latents, prompts, split_rows, ks=cfg.top_k, core_min_splits=cfg.core_min_splits,
        core_k=cfg.core_k, examples_k=cfg.examples_k, examples_n=cfg.examples_n,
        neuronpedia_url=sae.neuronpedia_url if sae.info.neuronpedia_id else None)
    result.sae = {k: meta.get(k) for k in ("source", "spec", "hook_layer", "d_sae",
                                           "architecture", "k", "neuronpedia_id")}
    result.params.update({"position": position, "layer": layer, "skipped_splits": skipped})
    write_json(out_dir / ANALYSIS_JSON, result.to_dict())
    (out_dir / "latents.md").write_text(latents_markdown(result), encoding="utf-8")
    names = list(split_rows)
    tensors = {}
    for name, (hr, bc) in split_rows.items():
        hr_frac = (latents[hr] > 0).float().mean(0)
        bc_frac = (latents[bc] > 0).float().mean(0)
        tensors[f"hr_frac/{name}"] = hr_frac
        tensors[f"bc_frac/{name}"] = bc_frac
    write_tensors(out_dir / "firing.safetensors", tensors,
                  metadata={"splits": ",".join(names), "layer": str(layer),
                            "position": str(position)})
    plot_popularity(result, out_dir / "popularity.png")
    for k in result.ks:
        plot_overlap(result, k, out_dir / f"overlap_top{k}.png")
    plot_core_scores(result, out_dir / "core_scores.png")
    summary = result.summary()
    summary["skipped_splits"] = skipped
    console.print(describe_analysis(result))
    return summary


def settings(cfg) -> dict:
    s = cfg.sae.analysis
    return {"position": cfg.activations.position, "top_k": sorted(set(s.top_k)),
            "core_min_splits": s.core_min_splits, "core_k": s.core_k,
            "examples_k": s.examples_k, "examples_n": s.examples_n}


STAGE = Stage("sae_analysis", ("sae", "activations", "pools", "labels"), settings, run,
              "SAE latents per split: scores, top-K, shared core and long tail, examples",
              enabled=lambda c: bool(c.sae.enabled), disabled_by="sae.enabled = false",
              outputs=("analysis.json", "firing.safetensors"))
