"""The ``geometry`` section: cosines, clustering, bootstrap stability, MDS and the
per-direction projections."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..format import num
from .common import direction_names, figure, named_count, read_json_or_none, stage_artifact

__all__ = ["MIN_CLUSTERING", "MIN_DIRECTIONS", "geometry_section"]


MIN_DIRECTIONS = 2
"""Cosines need a pair of directions."""
MIN_CLUSTERING = 3
"""Clustering into k >= 2 groups with a silhouette needs more directions than clusters."""


def _clusters(names: Sequence[str], labels: Sequence[int] | None) -> list[list[str]]:
    if not labels or len(labels) != len(names):
        return []
    return [[names[i] for i in range(len(names)) if labels[i] == c]
            for c in range(max(labels) + 1)]


def _direction_rows(run_dir: Path) -> list[dict]:
    directions = read_json_or_none(run_dir / "directions" / "directions.json") or {}
    rows = []
    for name, d in (directions.get("directions") or {}).items():
        d = d if isinstance(d, dict) else {}
        rows.append({"split": name, "n_hr": d.get("n_hr"), "n_bc": d.get("n_bc"),
                     "hr_proj_mean": d.get("hr_proj_mean"), "bc_proj_mean": d.get("bc_proj_mean"),
                     "projection_gap": d.get("projection_gap"), "raw_norm": d.get("raw_norm"),
                     "layer": d.get("layer")})
    return rows


def _bootstrap(boot: Mapping | None, names: Sequence[str]) -> dict | None:
    """The bootstrap table, the k = 2 stability (with why it is missing) and distinct pairs."""
    if not boot:
        return None
    boot_rows = []
    for name in names:
        p = (boot.get("per_split") or {}).get(name) or {}
        boot_rows.append({"split": name, "within_mean": p.get("within_mean"),
                          "within_std": p.get("within_std"),
                          "to_full_mean": p.get("to_full_mean"),
                          "n_hr_pool": p.get("n_hr_pool"), "n_bc_pool": p.get("n_bc_pool")})
    within = {r["split"]: num(r["within_mean"]) for r in boot_rows}
    n_distinct = counted = 0
    for pr in boot.get("cross_split") or []:
        wa, wb, m = within.get(pr.get("a")), within.get(pr.get("b")), num(pr.get("mean"))
        if None in (wa, wb, m):
            continue
        counted += 1
        n_distinct += int(m < min(wa, wb))
    reference = boot.get("reference")
    k2_reason = None
    if boot.get("k2_match_fraction") is None:
        k2_reason = (f"needs at least {MIN_CLUSTERING} directions for a k = 2 partition; this "
                     f"run has {len(names)}") if len(names) < MIN_CLUSTERING else \
            (reference or "no k = 2 partition in geometry.json")
    return {"n_resamples": boot.get("n_resamples"), "n_hr_sample": boot.get("n_hr_sample"),
            "n_bc_sample": boot.get("n_bc_sample"), "rows": boot_rows,
            "k2_match_fraction": boot.get("k2_match_fraction"),
            "k2_ari_mean": boot.get("k2_ari_mean"), "reference": reference,
            "k2_reason": k2_reason,
            "distinct_pairs": {
                "n_pairs": counted, "n_distinct": n_distinct,
                "definition": "a pair is distinct when the mean cosine between the two splits' "
                              "resampled directions is below both splits' mean within-split "
                              "resample cosine (geometry.json → bootstrap)"}}


def geometry_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    """Cosines, silhouettes and clusters per k, bootstrap stability and distinct pairs,
    MDS stress and the per-direction HR/BC projections.

    Every key is present whatever the number of directions: with one direction the section
    is not available (no pair to compare) but still lists the direction; with two there is
    one pair and no clustering (``clustering_reason`` says why), and ``bootstrap`` is None
    when the run made no resamples.

    Args:
        run_dir: the run folder.
        states: each stage's state; a stage that is not done gives
            ``{available: False, reason: "not run: ..."}``.
    """
    dir_rows = _direction_rows(run_dir)
    have = direction_names(run_dir)
    if have is not None and len(have) < MIN_DIRECTIONS:
        # the geometry stage refuses a single direction: say why rather than "incomplete"
        return {"available": False, "directions": dir_rows, "n_directions": len(have),
                "reason": f"not run: geometry needs at least {MIN_DIRECTIONS} directions; this "
                          f"run has {named_count(have)}"}
    g, reason = stage_artifact(run_dir, states, "geometry/geometry.json")
    if g is None:
        return {"available": False, "reason": reason, "directions": dir_rows,
                "n_directions": None if have is None else len(have)}
    names = [str(x) for x in g.get("names") or []]
    n = len(names)
    cl = g.get("clustering") or {}
    primary = cl.get("primary_linkage") or "average"
    linkages = {m: v for m, v in (cl.get("linkages") or {}).items() if isinstance(v, dict)}
    ks = [int(k) for k in cl.get("ks") or []]
    silhouette = [{"k": k, **{m: (linkages[m].get("silhouette") or {}).get(str(k))
                              for m in linkages}} for k in ks]
    plabels = (linkages.get(primary) or {}).get("labels") or {}
    clusters_by_k = {str(k): _clusters(names, plabels.get(str(k))) for k in ks}
    raw = g.get("summary") or {}
    best_k = cl.get("best_k", raw.get("best_k"))
    summary = {
        "min_offdiag_cosine": raw.get("min_offdiag_cosine"),
        "max_offdiag_cosine": raw.get("max_offdiag_cosine"),
        "mean_offdiag_cosine": raw.get("mean_offdiag_cosine"),
        "min_pair": [str(x) for x in raw.get("min_pair") or []],
        "max_pair": [str(x) for x in raw.get("max_pair") or []],
        # geometry.json has no silhouette at all when it could not cluster (<= 2 directions)
        "best_silhouette": raw.get("best_silhouette",
                                   (linkages.get(primary) or {}).get("best_silhouette")),
    }
    clustering_reason = None
    if best_k is None or not silhouette:
        clustering_reason = (f"clustering needs at least {MIN_CLUSTERING} directions; this run "
                             f"has {named_count(names)}") if n < MIN_CLUSTERING else \
            (cl.get("skipped_reason") or "geometry.json has no clustering")
    figures = [f for f in (
        figure(run_dir, "geometry/cosine_heatmap.png", "cosine similarity of the directions"),
        figure(run_dir, "geometry/dendrogram_average.png", "dendrogram, average linkage on 1 - cosine"),
        figure(run_dir, "geometry/dendrogram_complete.png", "dendrogram, complete linkage on 1 - cosine"),
        figure(run_dir, "geometry/mds.png", "2-D metric MDS of 1 - cosine"),
    ) if f]
    return {
        "available": True, "names": names, "n_directions": n, "n_pairs": n * (n - 1) // 2,
        "cosine": g.get("cosine") or [], "summary": summary,
        "primary_linkage": primary, "ks": ks, "best_k": best_k,
        "skipped_reason": cl.get("skipped_reason"), "clustering_reason": clustering_reason,
        "silhouette": silhouette, "clusters_by_k": clusters_by_k,
        "mds_stress": (g.get("mds") or {}).get("stress1"),
        "bootstrap": _bootstrap(g.get("bootstrap"), names),
        "directions": dir_rows,
        "figures": figures,
        "sources": ["geometry/geometry.json", "directions/directions.json"],
    }
