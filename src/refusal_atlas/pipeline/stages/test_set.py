"""``test_set``: draw the controlled test set (HR/HC/BR/BC), disjoint from the pools.

Its own stage, so that a different test set does not redo the directions.
"""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json
from ...pools import build_test_set, pool_report
from ...progress import warn
from ..inputs import TEST_SET_FILE, load_label_records, load_training_pools
from ..stage import Stage


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.pools
    records = load_label_records(ctx.stage_dir("labels"))
    pools = load_training_pools(ctx.stage_dir("pools"))
    test_set = build_test_set(ctx.suite, records, pools, n_per_group=cfg.test_per_group,
                              seed=cfg.test_seed, splits=list(pools.splits))
    write_json(out_dir / TEST_SET_FILE, test_set.to_dict())
    write_json(out_dir / "pool_report.json", pool_report(ctx.suite, records, pools, test_set))
    warn(test_set.warnings)
    return {"test_set": {g: len(ids) for g, ids in test_set.groups.items()},
            "warnings": test_set.warnings}


STAGE = Stage("test_set", ("pools",),
              lambda c: {"test_per_group": c.pools.test_per_group, "test_seed": c.pools.test_seed},
              run, "draw the controlled test set (HR/HC/BR/BC)", needs_model=False,
              outputs=("test_set.json", "pool_report.json"))
