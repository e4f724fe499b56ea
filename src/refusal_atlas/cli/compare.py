"""``compare``: one cross-model report (the atlas) from several run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..atlas import build_atlas, write_atlas
from ..errors import UserError
from ..pipeline import STAGES, stage_states
from ..progress import console
from .options import check_run_dir

RunsArg = Annotated[list[Path], typer.Argument(
    help="Run folders, one per model (e.g. runs/atlas/*).", show_default=False)]
CompareOutOpt = Annotated[Path, typer.Option(
    "--out", "-o", help="Folder for compare.html, compare.md, atlas.json and figures/.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the permutation test's label orders.")]
PermOpt = Annotated[int, typer.Option(
    "--n-perm", min=1, help="Label orders per pair of models when there are too many to try all.")]
TitleOpt = Annotated[Optional[str], typer.Option(help="The page's title.")]


def compare_command(runs: RunsArg, out: CompareOutOpt = Path("runs/compare"), seed: SeedOpt = 0,
                    n_perm: PermOpt = 2000, title: TitleOpt = None) -> None:
    """Compare the refusal atlases of several models: cosine matrices side by side in one
    split order, how alike the geometries are (correlation of the off-diagonal cosines, with
    a permutation p), clusters, trade-off gaps, dose-response, layers and SAE core / tail.
    A split a model lacks is shown as missing."""
    out_dir = check_run_dir(out)
    # `compare runs/atlas/* --out runs/atlas/compare` run twice: the glob holds the output
    given = [r for r in runs if r.expanduser().resolve() != out_dir]
    if len(given) < 2:
        raise UserError(f"compare needs at least two run folders; got {len(given)}")
    data = build_atlas([(r, stage_states(r, STAGES)) for r in given], n_perm=n_perm, seed=seed,
                       title=title)
    paths = write_atlas(data, out_dir)
    for p in data["pairs"]:
        if p["r"] is None:
            console.print(f"{escape(p['a'])} vs {escape(p['b'])}: no correlation "
                          f"({escape(p['reason'])})")
        else:
            console.print(f"{escape(p['a'])} vs {escape(p['b'])}: r = {p['r']:.3f} over "
                          f"{p['n_pairs']} pairs of {p['n_splits']} splits, permutation "
                          f"p = {p['p_value']:.4f}")
    for problem in data["problems"]:
        console.print(f"[yellow]warning:[/yellow] {escape(problem)}")
    console.print(f"[bold]compare:[/bold] {escape(str(paths['html']))} (and "
                  f"{escape(paths['md'].name)}, {escape(paths['json'].name)})")
