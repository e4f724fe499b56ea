"""``geometry``: cosines, clustering, bootstrap stability and MDS of the run's directions."""

from __future__ import annotations

from pathlib import Path

from ...activations import load_activation_table
from ...directions import load_directions
from ...geometry import analyze_geometry, save_geometry
from ...plots.geometry import save_geometry_figures
from ..inputs import load_label_records
from ..stage import Stage, settings_of
from .activations import ACTS_FILE


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    """Bootstrap pools are every HR / BC prompt available, not just the training pools."""
    cfg = ctx.config.geometry
    directions = load_directions(ctx.stage_dir("directions"))
    ids, acts, _ = load_activation_table(ctx.stage_dir("activations") / ACTS_FILE)
    row = {pid: k for k, pid in enumerate(ids)}
    label_of = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    suite = ctx.suite
    pools = {}
    for name in directions:
        hr = [row[p.id] for p in suite.splits[name] if label_of.get(p.id) == "HR" and p.id in row]
        bc = [row[p.id] for p in suite.benign[suite.benign_for[name]]
              if label_of.get(p.id) == "BC" and p.id in row]
        pools[name] = (acts[hr].numpy(), acts[bc].numpy())
    n_hr = max(d.n_hr for d in directions.values())
    n_bc = max(d.n_bc for d in directions.values())
    result = analyze_geometry({n: d.vector for n, d in directions.items()},
                              bootstrap_pools=pools if cfg.n_resamples > 0 else None,
                              n_resamples=max(cfg.n_resamples, 1), n_hr_sample=n_hr,
                              n_bc_sample=n_bc, ks=tuple(cfg.ks), seed=cfg.seed)
    save_geometry(result, out_dir)
    save_geometry_figures(result, out_dir)
    return {"best_k": result.best_k, **{k: v for k, v in result.summary.items()
                                        if isinstance(v, (int, float, str))}}


STAGE = Stage("geometry", ("directions", "activations"), lambda c: settings_of(c.geometry), run,
              "cosines, clustering, bootstrap, MDS, figures", needs_model=False,
              outputs=("geometry.json",))
