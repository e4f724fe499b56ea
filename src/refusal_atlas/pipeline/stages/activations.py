"""``activations``: activations at the chosen (layer, position) for every labelled prompt."""

from __future__ import annotations

from pathlib import Path

from ...activations import extract_activations, save_activation_table
from ..inputs import load_label_records
from ..stage import Stage, model_settings

ACTS_FILE = "acts.safetensors"


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    layer, position = ctx.layer, ctx.config.activations.position
    labelled = {r.prompt_id for r in load_label_records(ctx.stage_dir("labels"))
                if r.label is not None}
    prompts = [p for p in ctx.suite.all_prompts() if p.id in labelled]
    acts = extract_activations(ctx.lm, ctx.formatter, [p.text for p in prompts], [layer],
                               [position], batch_size=ctx.config.activations.batch_size,
                               cache=ctx.activation_cache, description=f"activations L{layer}")
    save_activation_table(out_dir / ACTS_FILE, [p.id for p in prompts], acts[:, 0, 0],
                          layer=layer, position=position)
    return {"layer": layer, "position": position, "n_prompts": len(prompts),
            "d_model": int(acts.shape[-1])}


STAGE = Stage("activations", ("layer_scan",),
              lambda c: {"model": model_settings(c), "position": c.activations.position},
              run, "activations at (layer, position) for every HR and BC prompt",
              outputs=("acts.safetensors",))
