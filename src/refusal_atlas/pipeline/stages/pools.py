"""``pools``: draw the balanced training pools (HR / BC per split) from the labels."""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...pools import draw_training_pools
from ...progress import warn
from ..inputs import POOLS_FILE, load_label_records
from ..stage import Stage, settings_of


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.pools
    records = load_label_records(ctx.stage_dir("labels"))
    pools = draw_training_pools(ctx.suite, records, n_hr=cfg.n_hr, n_bc=cfg.n_bc, seed=cfg.seed,
                                min_hr=cfg.min_pool)
    write_json(out_dir / POOLS_FILE, pools.to_dict())
    warn(pools.warnings)
    return {"splits_with_direction": list(pools.splits), "warnings": pools.warnings}


def settings(c) -> dict:
    # The test set has its own stage: drawing a different one must not redo the directions.
    return {k: v for k, v in settings_of(c.pools).items()
            if k not in ("test_per_group", "test_seed")}


STAGE = Stage("pools", ("labels",), settings, run, "draw the balanced training pools",
              needs_model=False,
              outputs=("pools.json",))
