"""``directions``: one difference-in-means direction per split, from the training pools."""

from __future__ import annotations

from pathlib import Path

from ...activations import load_activation_table
from ...directions import compute_direction, save_directions
from ..inputs import load_training_pools
from ..stage import Stage
from .activations import ACTS_FILE


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    ids, acts, meta = load_activation_table(ctx.stage_dir("activations") / ACTS_FILE)
    row = {pid: k for k, pid in enumerate(ids)}
    pools = load_training_pools(ctx.stage_dir("pools"))
    model_name = ctx.config.model.name
    layer, position = int(meta["layer"]), int(meta["position"])
    directions = {}
    for name, pool in pools.splits.items():
        directions[name] = compute_direction(
            name, acts[[row[i] for i in pool.hr_ids]], acts[[row[i] for i in pool.bc_ids]],
            layer=layer, position=position, model=model_name, hr_ids=pool.hr_ids,
            bc_ids=pool.bc_ids)
    save_directions(directions, out_dir)
    return {"layer": layer, "position": position,
            "splits": {n: {"n_hr": d.n_hr, "n_bc": d.n_bc, "raw_norm": round(d.raw_norm, 4),
                           "projection_gap": round(d.projection_gap, 4)}
                       for n, d in directions.items()}}


STAGE = Stage("directions", ("activations", "pools"), lambda c: {}, run,
              "difference-in-means direction per split", needs_model=False,
              outputs=("directions.safetensors", "directions.json"))
