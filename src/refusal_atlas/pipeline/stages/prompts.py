"""``prompts``: load the prompt suite and snapshot it into the run folder."""

from __future__ import annotations

from pathlib import Path

from ...data import limit_suite, load_suite, write_suite_snapshot
from ...errors import UserError
from ..stage import Stage, settings_of


def _suite(cfg):
    suite = load_suite(cfg.suite, data_dir=cfg.data_dir, splits=cfg.splits)
    return limit_suite(suite, cfg.limit) if cfg.limit is not None else suite


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    return write_suite_snapshot(_suite(ctx.config.data), out_dir)


def check(ctx) -> None:
    """The suite loads, and at least one split can get a direction: a split needs
    ``pools.min_pool`` refused prompts, so one with fewer prompts never gets one."""
    suite = _suite(ctx.config.data)
    if len(suite.splits) < 2:
        raise UserError(f"{ctx.config.data.suite} has {len(suite.splits)} categor"
                        f"{'y' if len(suite.splits) == 1 else 'ies'} of non-compliant prompts; "
                        "the study compares categories, so it needs at least 2 (a file or folder "
                        "with a 'split'/'category' column, or one file per category)")
    need = ctx.config.pools.min_pool
    if not any(len(prompts) >= need for prompts in suite.splits.values()):
        sizes = ", ".join(f"{name} {len(p)}" for name, p in suite.splits.items())
        raise UserError(f"no split of {ctx.config.data.suite} has the {need} prompts a direction "
                        f"needs at the least (pools.min_pool; prompts per split: {sizes}): add "
                        "prompts or lower pools.min_pool")


STAGE = Stage("prompts", (), lambda c: settings_of(c.data), run,
              "load the prompt suite and snapshot it", needs_model=False, check=check,
              outputs=("prompts.jsonl", "suite.json"))
