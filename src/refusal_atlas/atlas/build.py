"""The atlas's data: every model's run read, splits aligned in one order, and each pair of
models' geometries compared."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UserError
from .load import load_model_run
from .similarity import DEFINITION, align_matrix, cosine_correlation, split_order

__all__ = ["FORMAT", "AtlasData", "build_atlas"]

AtlasData = dict[str, Any]
"""What :func:`build_atlas` returns: plain dicts / lists / numbers / strings (JSON-ready)."""

FORMAT = "refusal-atlas/atlas"
NOT_IN_DATA = "not in this run's data"


def _unique_labels(models: list[dict]) -> None:
    """Two runs of one model (other data, other settings) get their run folder's name too."""
    counts = Counter(m["label"] for m in models)
    for m in models:
        if counts[m["label"]] > 1:
            m["label"] = f"{m['label']} ({Path(m['run_dir']).name})"


def _json_matrix(mat) -> list[list[float | None]]:
    return [[None if v != v else float(v) for v in row] for row in mat.tolist()]


def _pair(a: dict, b: dict, n_perm: int, seed: int) -> dict:
    out = {"a": a["label"], "b": b["label"]}
    missing = [m["label"] for m in (a, b) if not m["geometry"]["available"]]
    if missing:
        why = "; ".join(f"{m['label']}: {m['geometry'].get('reason')}" for m in (a, b)
                        if not m["geometry"]["available"])
        return {**out, "r": None, "p_value": None, "n_splits": None, "n_pairs": None,
                "common": [], "exact": None, "n_perm": 0,
                "reason": f"no geometry to compare ({why})"}
    return {**out, **{k: v for k, v in cosine_correlation(a["geometry"], b["geometry"],
                                                          n_perm=n_perm, seed=seed).items()
                      if k != "definition"}}


def build_atlas(runs: Sequence[tuple[str | Path, Mapping[str, dict]]], *, n_perm: int = 2000,
                seed: int = 0, title: str | None = None) -> AtlasData:
    """Everything the cross-model report shows, read from the models' run folders.

    Splits are aligned in one order (the first run's, then what later runs add); a split a
    model lacks is shown as missing (why: not in its data, or no direction), never an error.
    Each pair of models gets the correlation of their off-diagonal cosines with a
    permutation p-value (:func:`~refusal_atlas.atlas.similarity.cosine_correlation`).

    Args:
        runs: ``(run_dir, states)`` per model, states from
            :func:`refusal_atlas.pipeline.stage_states`.
        n_perm: random label orders per pair when there are too many to try all.
        seed: seed of those orders (the same seed gives the same p-values).
        title: the page's title.

    Example:
        >>> from refusal_atlas.pipeline import STAGES, stage_states
        >>> data = build_atlas([(d, stage_states(d, STAGES)) for d in ("runs/a", "runs/b")])  # doctest: +SKIP
        >>> data["pairs"][0]["r"]  # doctest: +SKIP
    """
    if not runs:
        raise UserError("give at least one run folder to compare")
    dirs = [Path(d).resolve() for d, _ in runs]
    dup = [d for d, n in Counter(dirs).items() if n > 1]
    if dup:
        raise UserError(f"run folder {dup[0]} is given twice; give each run once")
    models = [load_model_run(d, s) for d, s in runs]
    _unique_labels(models)
    order = split_order([list(m["split_status"]) for m in models])
    for m in models:
        g = m["geometry"]
        m["aligned_cosine"] = _json_matrix(align_matrix(g["names"], g["cosine"], order))
    presence = [{"split": s, "status": [m["split_status"].get(s, NOT_IN_DATA) for m in models]}
                for s in order]
    pairs = [_pair(models[i], models[j], n_perm, seed)
             for i in range(len(models)) for j in range(i + 1, len(models))]
    return {
        "format": FORMAT, "version": 1,
        "title": title or "refusal-atlas: " + " vs ".join(m["label"] for m in models),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split_order": order, "models": models, "presence": presence, "pairs": pairs,
        "n_perm": n_perm, "seed": seed, "correlation_definition": DEFINITION,
        "problems": [f"{m['label']}: {p}" for m in models for p in m["problems"]],
    }
