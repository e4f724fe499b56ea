"""``prompts``: load the prompt suite and snapshot it into the run folder."""

from __future__ import annotations

from pathlib import Path

from ...data import limit_suite, load_suite, write_suite_snapshot
from ..stage import Stage, settings_of


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.data
    suite = load_suite(cfg.suite, data_dir=cfg.data_dir, splits=cfg.splits)
    if cfg.limit is not None:
        suite = limit_suite(suite, cfg.limit)
    return write_suite_snapshot(suite, out_dir)


STAGE = Stage("prompts", (), lambda c: settings_of(c.data), run,
              "load the prompt suite and snapshot it", needs_model=False)
