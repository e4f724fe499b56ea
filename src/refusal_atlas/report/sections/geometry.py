"""The ``geometry`` section: cosines, clustering, bootstrap stability, MDS and the
per-direction projections."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..format import num
from .common import figure, read_json_or_none, stage_artifact

__all__ = ["geometry_section"]


def _clusters(names: Sequence[str], labels: Sequence[int] | None) -> list[list[str]]:
    if not labels:
        return []
    return [[names[i] for i in range(len(names)) if labels[i] == c]
            for c in range(max(labels) + 1)]


def geometry_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """Cosines, silhouettes and clusters per k, bootstrap stability and distinct pairs,
    MDS stress and the per-direction HR/BC projections.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    g, reason = stage_artifact(run_dir, states, "geometry/geometry.json")
    if g is None:
        return {"available": False, "reason": reason}
    names = list(g.get("names") or [])
    cos = g.get("cosine") or []
    cl = g.get("clustering") or {}
    primary = cl.get("primary_linkage", "average")
    linkages = cl.get("linkages") or {}
    ks = [int(k) for k in cl.get("ks") or []]
    silhouette = [{"k": k, **{m: (linkages[m].get("silhouette") or {}).get(str(k))
                              for m in linkages}} for k in ks]
    plabels = (linkages.get(primary) or {}).get("labels") or {}
    clusters_by_k = {str(k): _clusters(names, plabels.get(str(k))) for k in ks}
    summary = g.get("summary") or {}
    boot = g.get("bootstrap") or None
    boot_rows, distinct = [], None
    if boot:
        for name in names:
            p = (boot.get("per_split") or {}).get(name) or {}
            boot_rows.append({"split": name, "within_mean": p.get("within_mean"),
                              "within_std": p.get("within_std"),
                              "to_full_mean": p.get("to_full_mean"),
                              "n_hr_pool": p.get("n_hr_pool"), "n_bc_pool": p.get("n_bc_pool")})
        within = {r["split"]: num(r["within_mean"]) for r in boot_rows}
        pairs = boot.get("cross_split") or []
        n_distinct = 0
        counted = 0
        for pr in pairs:
            wa, wb, m = within.get(pr.get("a")), within.get(pr.get("b")), num(pr.get("mean"))
            if None in (wa, wb, m):
                continue
            counted += 1
            n_distinct += int(m < min(wa, wb))
        distinct = {"n_pairs": counted, "n_distinct": n_distinct,
                    "definition": "a pair is distinct when the mean cosine between the two "
                                  "splits' resampled directions is below both splits' mean "
                                  "within-split resample cosine (geometry.json → bootstrap)"}
    directions = read_json_or_none(run_dir / "directions" / "directions.json") or {}
    dir_rows = []
    for name, d in (directions.get("directions") or {}).items():
        dir_rows.append({"split": name, "n_hr": d.get("n_hr"), "n_bc": d.get("n_bc"),
                         "hr_proj_mean": d.get("hr_proj_mean"), "bc_proj_mean": d.get("bc_proj_mean"),
                         "projection_gap": d.get("projection_gap"), "raw_norm": d.get("raw_norm"),
                         "layer": d.get("layer")})
    figures = [f for f in (
        figure(run_dir, "geometry/cosine_heatmap.png", "cosine similarity of the directions"),
        figure(run_dir, "geometry/dendrogram_average.png", "dendrogram, average linkage on 1 - cosine"),
        figure(run_dir, "geometry/dendrogram_complete.png", "dendrogram, complete linkage on 1 - cosine"),
        figure(run_dir, "geometry/mds.png", "2-D metric MDS of 1 - cosine"),
    ) if f]
    return {
        "available": True, "names": names, "cosine": cos, "summary": summary,
        "primary_linkage": primary, "ks": ks, "best_k": cl.get("best_k"),
        "skipped_reason": cl.get("skipped_reason"), "silhouette": silhouette,
        "clusters_by_k": clusters_by_k,
        "mds_stress": (g.get("mds") or {}).get("stress1"),
        "bootstrap": None if not boot else {
            "n_resamples": boot.get("n_resamples"), "n_hr_sample": boot.get("n_hr_sample"),
            "n_bc_sample": boot.get("n_bc_sample"), "rows": boot_rows,
            "k2_match_fraction": boot.get("k2_match_fraction"),
            "k2_ari_mean": boot.get("k2_ari_mean"), "reference": boot.get("reference"),
            "distinct_pairs": distinct},
        "directions": dir_rows,
        "figures": figures,
        "sources": ["geometry/geometry.json", "directions/directions.json"],
    }
