"""Experiment 4, layer robustness: does the geometry of the split directions (their cosine
matrix and its clusters) hold at layers around the chosen one?

Per layer L-w..L+w (those that exist): the split directions from the same training pools
(difference in means, :func:`refusal_atlas.directions.diff_in_means`), their cosine matrix
(:func:`refusal_atlas.geometry.cosine_matrix`), the Pearson correlation of its off-diagonal
entries with the chosen layer's and a permutation p-value (split labels permuted:
:func:`refusal_atlas.atlas.similarity.cosine_correlation`), and the adjusted Rand index of
its clusters (:func:`refusal_atlas.geometry.cluster_cosine_matrix`, average linkage) against
the chosen layer's, at the geometry stage's k.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..atlas.similarity import cosine_correlation
from ..directions import diff_in_means
from ..errors import UserError
from ..geometry import cluster_cosine_matrix, cosine_matrix
from .findings import Finding

__all__ = ["compare_layers", "directions_by_layer", "layer_window", "robustness_findings"]


def layer_window(chosen: int, window: int, n_layers: int) -> list[int]:
    """``chosen - window .. chosen + window`` within the ``resid_pre`` layers 0..n_layers.

    Example:
        >>> layer_window(1, 2, 4)
        [0, 1, 2, 3]
    """
    return [x for x in range(chosen - window, chosen + window + 1) if 0 <= x <= n_layers]


def directions_by_layer(acts: torch.Tensor, layers: Sequence[int],
                        pools: Mapping[str, tuple[Sequence[int], Sequence[int]]]
                        ) -> dict[int, dict[str, np.ndarray] | str]:
    """Per layer, ``{split: unit direction}`` from activations ``[n, len(layers), d]`` and
    ``{split: (HR rows, BC rows)}``; a layer where some split has no direction (identical
    HR and BC means, e.g. an embedding layer at a template token) gives the reason instead.

    Example:
        >>> acts = torch.zeros(4, 1, 2); acts[:2, 0, 0] = 1.0
        >>> directions_by_layer(acts, [5], {"a": ([0, 1], [2, 3])})[5]["a"].tolist()
        [1.0, 0.0]
    """
    out: dict[int, dict[str, np.ndarray] | str] = {}
    for li, layer in enumerate(layers):
        try:
            out[int(layer)] = {name: diff_in_means(acts[list(hr), li], acts[list(bc), li])[0]
                               .double().numpy() for name, (hr, bc) in pools.items()}
        except UserError as exc:
            out[int(layer)] = f"no direction at layer {layer}: {exc}"
    return out


def compare_layers(dirs: Mapping[int, Mapping[str, np.ndarray] | str], chosen: int,
                   k: int | None, *, n_perm: int = 1000, seed: int = 0) -> list[dict]:
    """Per layer: the correlation (and permutation p) of its off-diagonal cosines with the
    chosen layer's, and the ARI of its k clusters against the chosen layer's.

    Args:
        dirs: :func:`directions_by_layer`.
        chosen: the chosen layer (a key of ``dirs`` with directions).
        k: the number of clusters (the geometry stage's); None: no ARI.
        n_perm: random label orders when there are too many splits to try every order.
        seed: seed of those orders.
    """
    from sklearn.metrics import adjusted_rand_score  # sklearn is slow to import; defer it

    ref = dirs[chosen]
    if isinstance(ref, str):
        raise UserError(ref)
    names, ref_cos = cosine_matrix(ref)
    k_ok = k is not None and 2 <= k < len(names)
    ref_labels = cluster_cosine_matrix(names, ref_cos, ks=(k,)).labels(k) if k_ok else None
    rows = []
    for layer in sorted(dirs):
        d = dirs[layer]
        row: dict[str, Any] = {"layer": layer, "offset": layer - chosen, "r": None,
                               "p_value": None, "ari": None, "labels": None, "reason": None}
        if isinstance(d, str):
            row["reason"] = d
            rows.append(row)
            continue
        _, cos = cosine_matrix({n: d[n] for n in names})
        corr = cosine_correlation({"names": names, "cosine": ref_cos.tolist()},
                                  {"names": names, "cosine": cos.tolist()},
                                  n_perm=n_perm, seed=seed)
        row.update(r=corr["r"], p_value=corr["p_value"], reason=corr["reason"],
                   cosine=cos.tolist())
        if k_ok:
            labels = cluster_cosine_matrix(names, cos, ks=(k,)).labels(k)
            row.update(labels=labels, ari=float(adjusted_rand_score(ref_labels, labels)))
        rows.append(row)
    return rows


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def robustness_findings(rows: Sequence[Mapping[str, Any]], chosen: int, k: int | None, *,
                        within: int = 2, min_correlation: float = 0.8, min_ari: float = 0.5,
                        n_splits: int | None = None) -> list[Finding]:
    """One finding: is the geometry robust at every layer within ``chosen ± within``?

    Example:
        >>> rows = [{"layer": 3, "offset": -1, "r": 0.9, "p_value": 0.1, "ari": 1.0},
        ...         {"layer": 4, "offset": 0, "r": 1.0, "p_value": 0.1, "ari": 1.0}]
        >>> robustness_findings(rows, 4, 2, within=1)[0].verdict
        'robust'
    """
    near = [r for r in rows if r["offset"] != 0 and abs(r["offset"]) <= within]
    per_layer = "; ".join(
        f"L{r['layer']}: r {_fmt(r.get('r'))} (p {_fmt(r.get('p_value'), 3)}), "
        f"ARI {_fmt(r.get('ari'))}" if not (r.get("r") is None and r.get("reason"))
        else f"L{r['layer']}: {r['reason']}" for r in rows if r["offset"] != 0)
    criterion = (f"robust if at every layer within L ± {within} (L = {chosen}, the chosen layer; "
                 f"those that exist) the Pearson correlation of the off-diagonal cosines with "
                 f"L's is >= {min_correlation} and the adjusted Rand index of the k = {k} "
                 f"average-linkage clusters against L's is >= {min_ari}")
    failing = [r for r in near if r.get("r") is None or r["r"] < min_correlation
               or k is None or r.get("ari") is None or r["ari"] < min_ari]
    undecidable = (not near or any(r.get("r") is None for r in near) or k is None
                   or any(r.get("ari") is None for r in near))
    if undecidable:
        why = ("no layer within the window" if not near else
               "fewer than 3 splits, a layer without directions, or no clusters at this k")
        verdict, supported = f"not decidable ({why})", None
    elif failing:
        verdict = "not robust: fails at " + ", ".join(f"L{r['layer']}" for r in failing)
        supported = False
    else:
        verdict, supported = "robust", True
    return [Finding(
        "layer_robustness", "Do the cosine matrix and the clusters of the split directions "
                            "hold at layers around the chosen one?",
        measured=f"{n_splits or '?'} splits, chosen layer {chosen}, k = {k}: {per_layer}",
        criterion=criterion, verdict=verdict, supported=supported,
        subject=f"L{chosen} ± {within}",
        details={"chosen": chosen, "k": k, "within": within,
                 "layers": [{key: r.get(key) for key in ("layer", "offset", "r", "p_value",
                                                        "ari", "reason")} for r in rows]})]
