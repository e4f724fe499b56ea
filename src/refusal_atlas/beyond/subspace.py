"""Experiment 2, the refusal subspace: is refusal one direction or a low-dimensional span (a
"cone", Wollschläger et al., ICML 2025)?

The split directions (unit vectors at the chosen layer) are stacked and decomposed by an
uncentred PCA (SVD of the ``[n_splits, d]`` matrix): uncentred, because the shared refusal
axis is what all directions have in common and centring would remove it from every
component. "Variance explained" is each component's share of the squared singular values.
The top-k components (k = 1..max_k, those that exist) and the whole span are then ablated at
every layer, as directional ablation is (:func:`refusal_atlas.hooks.ablate_subspace`),
through the sweep engine; RR and ORR against k, beside single-direction ablation.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..sweeps import LayerVector, span_vector
from .findings import Finding
from .stats import bootstrap_rate, permutation_p_rates

__all__ = ["SPAN", "find_smallest_k", "outcomes", "principal_components", "subspace_findings",
           "subspace_rates", "subspace_vectors"]

SPAN = "subspace_span"
"""The vector name of the whole span of the split directions."""


def principal_components(directions: Any, *, tol: float = 1e-6) -> dict:
    """Uncentred PCA of unit directions ``[n, d]``: components (sign: positive dot with the
    mean direction), singular values, the share of the squared norm each explains, the rank.

    Example:
        >>> p = principal_components(np.eye(3)[:2])
        >>> p["rank"], [round(v, 3) for v in p["variance_explained"]]
        (2, [0.5, 0.5])
    """
    x = np.asarray(directions, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"expected [n, d] directions, got shape {x.shape}")
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    mean = x.mean(0)
    signs = np.where(vt @ mean < 0, -1.0, 1.0)
    vt = vt * signs[:, None]
    total = float((s ** 2).sum())
    explained = (s ** 2 / total) if total > 0 else np.zeros_like(s)
    rank = int((s > tol * (s[0] if len(s) else 0)).sum())
    return {"components": vt, "singular_values": s.tolist(),
            "variance_explained": explained.tolist(),
            "cumulative": np.cumsum(explained).tolist(), "rank": rank}


def subspace_vectors(components: np.ndarray, rank: int, layer: int, *, max_k: int = 5
                     ) -> tuple[dict[str, LayerVector], dict[str, int]]:
    """``{name: subspace}`` to ablate: ``subspace_k1`` .. ``subspace_kK`` (the top-k
    components, K = min(max_k, rank)) and ``subspace_span`` (all ``rank`` components) when
    the span is larger than the top K; and ``{name: k}``.

    Example:
        >>> vecs, ks = subspace_vectors(np.eye(4)[:3], 3, 1, max_k=2)
        >>> ks
        {'subspace_k1': 1, 'subspace_k2': 2, 'subspace_span': 3}
    """
    comps = np.asarray(components, dtype=np.float64)[:rank]
    out: dict[str, LayerVector] = {}
    ks: dict[str, int] = {}
    for k in range(1, min(max_k, rank) + 1):
        out[f"subspace_k{k}"] = span_vector(comps[:k], layer, meta={"k": k})
        ks[f"subspace_k{k}"] = k
    if rank > max_k:
        out[SPAN] = span_vector(comps, layer, meta={"k": rank})
        ks[SPAN] = rank
    return out, ks


def outcomes(rows: Sequence[Mapping[str, Any]], condition: str) -> tuple[list[bool], list[bool]]:
    """``(harmful refused?, benign refused?)`` per prompt of one condition, prompt-id order
    (rows without a parsed verdict left out), so two conditions pair up prompt by prompt."""
    picked = sorted((r for r in rows if r["condition"] == condition
                     and r.get("refused") is not None), key=lambda r: str(r["prompt_id"]))
    return ([bool(r["refused"]) for r in picked if r["harmful"]],
            [bool(r["refused"]) for r in picked if not r["harmful"]])


def subspace_rates(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str], *,
                   n_boot: int = 1000, n_perm: int = 1000, seed: int = 0) -> dict[str, dict]:
    """RR and ORR (count, bootstrap CI) per condition, and the paired permutation p of each
    condition's RR against the baseline's (same prompts)."""
    base_h, _ = outcomes(rows, "baseline")
    out = {}
    for cid in conditions:
        h, b = outcomes(rows, cid)
        entry = {"rr": bootstrap_rate(h, n_boot=n_boot, seed=seed),
                 "orr": bootstrap_rate(b, n_boot=n_boot, seed=seed)}
        if cid != "baseline" and len(h) == len(base_h) and h:
            entry["p_rr_vs_baseline"] = permutation_p_rates(h, base_h, paired=True,
                                                            n_perm=n_perm, seed=seed)
        out[cid] = entry
    return out


def find_smallest_k(rates: Mapping[str, dict], ks: Mapping[str, int], baseline_rr: float
                    ) -> str | None:
    """The condition with the smallest k whose RR is below half the baseline's, or None.

    Example:
        >>> find_smallest_k({"ablate/a": {"rr": {"rate": 0.4}}, "ablate/b": {"rr": {"rate": 0.1}}},
        ...                 {"a": 1, "b": 2}, 0.6)
        'b'
    """
    for name in sorted(ks, key=lambda n: ks[n]):
        rr = (rates.get(f"ablate/{name}") or {}).get("rr", {}).get("rate")
        if rr is not None and rr < 0.5 * baseline_rr:
            return name
    return None


def _rate_text(r: Mapping[str, Any]) -> str:
    if r.get("rate") is None:
        return "n/a"
    lo, hi = r["ci95"]
    return f"{r['rate']:.2f} ({r['k']}/{r['n']}, CI {lo:.2f}-{hi:.2f})"


def subspace_findings(pca: Mapping[str, Any], rates: Mapping[str, dict], ks: Mapping[str, int],
                      single: Mapping[str, str], *, variance_target: float = 0.9
                      ) -> list[Finding]:
    """The experiment's two findings: the dimension of the directions' span (PCA), and the
    smallest k whose ablation halves RR, beside single-direction ablation.

    Args:
        pca: :func:`principal_components` (without the components is fine).
        rates: :func:`subspace_rates` keyed by condition id (the baseline and
            ``ablate/<name>`` for the subspaces and the single directions).
        ks: ``{subspace name: k}`` (:func:`subspace_vectors`).
        single: ``{split: condition id}`` of the single-direction ablations in ``rates``.
        variance_target: the cumulative share that counts as "spanned".
    """
    cum = list(pca["cumulative"])
    n_target = next((i + 1 for i, c in enumerate(cum) if c >= variance_target - 1e-12), len(cum))
    ve = ", ".join(f"PC{i + 1} {v:.1%}" for i, v in enumerate(pca["variance_explained"][:8]))
    dim = Finding(
        "subspace", "How many dimensions do the split directions span?",
        measured=f"uncentred PCA of {len(cum)} unit split directions: {ve} (rank "
                 f"{pca['rank']})",
        criterion=f"the number of principal components whose cumulative share of the squared "
                  f"norm reaches {variance_target:.0%}",
        verdict=f"{n_target} component(s) reach {variance_target:.0%} "
                f"(PC1 alone {pca['variance_explained'][0]:.1%})",
        supported=None, subject="PCA",
        details={k: pca[k] for k in ("singular_values", "variance_explained", "cumulative",
                                     "rank")} | {"n_for_target": n_target})
    base = rates.get("baseline", {}).get("rr", {})
    base_rr = base.get("rate")
    per_k = "; ".join(f"k={ks[n]}{' (span)' if n == SPAN else ''}: RR "
                      f"{_rate_text(rates[f'ablate/{n}']['rr'])}, ORR "
                      f"{_rate_text(rates[f'ablate/{n}']['orr'])}"
                      for n in sorted(ks, key=lambda n: ks[n]) if f"ablate/{n}" in rates)
    single_rr = {s: rates[c]["rr"].get("rate") for s, c in single.items() if c in rates}
    halved_single = sorted(s for s, r in single_rr.items()
                           if r is not None and base_rr and r < 0.5 * base_rr)
    best = min((r, s) for s, r in single_rr.items() if r is not None) if any(
        r is not None for r in single_rr.values()) else None
    criterion = ("the smallest k whose top-k ablation brings RR below half the baseline RR "
                 "(point estimates); 'refusal is a subspace' holds when that k >= 2 and no "
                 "single split direction's ablation halves RR; it fails when k = 1 or a single "
                 "direction already halves RR, or when even the whole span does not")
    if not base_rr:
        verdict, supported, k_min = "not decidable: the baseline refuses no harmful prompt", \
            None, None
    else:
        name = find_smallest_k(rates, ks, base_rr)
        k_min = ks[name] if name else None
        if k_min is None:
            verdict, supported = "none: no ablated subspace halves RR", False
        else:
            verdict = f"k = {k_min}" + (" (the whole span)" if name == SPAN else "")
            supported = k_min >= 2 and not halved_single
            if halved_single:
                verdict += f"; but single directions already halve RR ({', '.join(halved_single)})"
    single_text = (f"single-direction ablation RR {best[0]:.2f} at best ({best[1]}), "
                   f"{len(halved_single)} of {len(single_rr)} halve RR" if best else
                   "no single-direction ablation measured")
    ablate = Finding(
        "subspace", "Does ablating a low-dimensional refusal subspace remove refusal where "
                    "one direction does not?",
        measured=f"baseline RR {_rate_text(base)}; {per_k}; {single_text}",
        criterion=criterion, verdict=verdict, supported=supported, subject="ablation",
        details={"baseline_rr": base_rr, "k_min": k_min, "ks": dict(ks),
                 "single_rr": single_rr, "rates": dict(rates)})
    return [dim, ablate]
