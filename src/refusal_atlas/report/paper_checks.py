"""The paper's three findings measured on a run: each a list of checks (measured value, the
paper's value, the criterion, the artifact field) and a status computed from them.

The module is not called ``findings`` because the package exports the function
:func:`findings`, which would hide a submodule of the same name.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .format import alpha_key, fmt, num, pct

__all__ = ["COCONOT_NON_SAFETY", "DISTINCT_COSINE", "MIN_RR_MOVE", "NOT_MEASURED", "ONE_KNOB_ALPHA",
           "ONE_KNOB_FALLBACK_GAP", "PAPER", "SILHOUETTE_TOLERANCE", "finding_geometry",
           "finding_one_knob", "finding_sae", "findings"]

COCONOT_NON_SAFETY = ("CocoNot_Humanizing", "CocoNot_Incomplete", "CocoNot_Indeterminate",
                      "CocoNot_Unsupported")

PAPER = {
    "model": "Gemma-2-9b-it",
    "cosine_min": -0.06,
    "cosine_max": 0.92,
    "n_clusters": 2,
    "silhouette": 0.45,
}
"""The paper's numbers (METHOD.md, "Claim to reproduce")."""

SILHOUETTE_TOLERANCE = 0.10
ONE_KNOB_ALPHA = 0.05
ONE_KNOB_FALLBACK_GAP = 0.10
MIN_RR_MOVE = 0.10
DISTINCT_COSINE = 0.5


NOT_MEASURED = "not measured in this run"


def _verdict(checks: Sequence[Mapping[str, Any]]) -> str:
    """From the decided checks; with none decided, "not measured in this run" when every
    check (preconditions aside) could not be measured, else "inconclusive"."""
    decided = [c["agrees"] for c in checks
               if c.get("agrees") is not None and not c.get("precondition")]
    if not decided:
        judged = [c for c in checks if not c.get("precondition")]
        if judged and all(c.get("not_measured") for c in judged):
            return NOT_MEASURED
        return "inconclusive"
    if all(decided):
        return "agrees with the paper"
    if not any(decided):
        return "does not agree with the paper"
    return "partly agrees with the paper"


def _check(label: str, measured: str, paper: str, agrees: bool | None, criterion: str,
           source: str, precondition: bool = False) -> dict:
    """One measured comparison; a ``precondition`` (e.g. "steering moved RR at all") is shown
    but decides only whether the finding can be judged, not which way."""
    return {"label": label, "measured": measured, "paper": paper, "agrees": agrees,
            "criterion": criterion, "source": source, "precondition": precondition,
            "not_measured": None}


def _not_measured(label: str, paper: str, reason: str, source: str) -> dict:
    """A check this run cannot make (too few directions, a skipped step): shown with the
    reason, never counted for or against the paper."""
    return {**_check(label, NOT_MEASURED, paper, None, reason, source), "not_measured": reason}


def _unavailable(base: dict, section: Mapping[str, Any]) -> dict:
    """The finding when its section is not available at all."""
    return {**base, "status": NOT_MEASURED, "checks": [],
            "text": [f"Not measured in this run ({section.get('reason') or 'no data'})."],
            "sources": []}


def finding_geometry(geo: Mapping[str, Any], model: str | None) -> dict:
    """Finding 1 from the ``geometry`` section: distinct directions, two clusters
    (CoCoNot non-safety vs the rest), silhouette and best k against the paper's."""
    base = {"id": "geometry", "title": "1. Refusal directions are geometrically distinct",
            "claim": "Directions computed separately per category are geometrically distinct: "
                     f"pairwise cosine from {PAPER['cosine_min']} to {PAPER['cosine_max']} on "
                     f"{PAPER['model']}, two clusters (the four CoCoNot non-safety splits vs the "
                     f"rest), silhouette about {PAPER['silhouette']}."}
    if not geo.get("available"):
        return _unavailable(base, geo)
    s = geo.get("summary") or {}
    names = geo.get("names") or []
    n = len(names)
    cmin, cmax = num(s.get("min_offdiag_cosine")), num(s.get("max_offdiag_cosine"))
    checks: list[dict] = []
    text: list[str] = []
    src = "geometry/geometry.json"
    paper_range = (f"the paper reports {PAPER['cosine_min']} to {PAPER['cosine_max']} on "
                   f"{PAPER['model']}.")
    if n == 2:  # one pair: no range
        text.append(f"On {model or 'this model'}, the 2 directions ({' and '.join(names)}) have "
                    f"cosine {fmt(cmin)}; " + paper_range)
    else:
        text.append(f"On {model or 'this model'}, the {n} directions have pairwise cosines from "
                    f"{fmt(cmin)} ({' vs '.join(s.get('min_pair') or [])}) to {fmt(cmax)} "
                    f"({' vs '.join(s.get('max_pair') or [])}), mean "
                    f"{fmt(s.get('mean_offdiag_cosine'))}; " + paper_range)
    dp = ((geo.get("bootstrap") or {}).get("distinct_pairs")) or None
    if dp and dp.get("n_pairs"):
        share = dp["n_distinct"] / dp["n_pairs"]
        checks.append(_check(
            "directions differ beyond resampling noise",
            f"{dp['n_distinct']} of {dp['n_pairs']} pairs ({pct(share)})",
            "distinct directions", share >= 0.5,
            "at least half the pairs are further apart than each split's own resampled "
            "directions (bootstrap cross-split cosine below both within-split cosines)",
            f"{src} → bootstrap"))
        text.append(f"{dp['n_distinct']} of {dp['n_pairs']} pairs are further apart than "
                    "resampling of the training prompts moves a single split's direction.")
    elif cmin is not None:
        checks.append(_check(
            "directions are not all parallel", f"min cosine {fmt(cmin)}",
            f"min cosine {PAPER['cosine_min']}", cmin < DISTINCT_COSINE,
            f"the least similar pair has cosine below {DISTINCT_COSINE} (no bootstrap in this run)",
            f"{src} → summary.min_offdiag_cosine"))
    else:
        checks.append(_not_measured("directions are not all parallel",
                                    f"min cosine {PAPER['cosine_min']}",
                                    "geometry.json has no off-diagonal cosine",
                                    f"{src} → summary.min_offdiag_cosine"))
    clusters2 = (geo.get("clusters_by_k") or {}).get("2") or []
    no_clusters = geo.get("clustering_reason")
    linkage = geo.get("primary_linkage") or "average"
    two_clusters = "two clusters: CoCoNot non-safety vs the rest (k = 2)"
    coconot_vs_rest = "{" + ", ".join(COCONOT_NON_SAFETY) + "} vs the other splits"
    no_k2 = "k = 2 is not among the clustering's k (geometry.ks)"
    sil = {int(r["k"]): num(r.get(linkage)) for r in geo.get("silhouette") or []}
    present = [c for c in COCONOT_NON_SAFETY if c in names]
    if clusters2 and len(present) == len(COCONOT_NON_SAFETY) and n > len(present):
        match = any(set(c) == set(COCONOT_NON_SAFETY) for c in clusters2)
        desc = " | ".join(", ".join(c) for c in clusters2)
        checks.append(_check(
            two_clusters, "matches" if match else f"differs: {desc}", coconot_vs_rest, match,
            f"at k = 2 ({linkage} linkage on 1 - cosine) one cluster is exactly "
            "the four CoCoNot non-safety splits",
            f"{src} → clustering.linkages.{linkage}.labels['2']"))
        text.append("At k = 2 the clusters are " + " and ".join("{" + ", ".join(c) + "}"
                                                                  for c in clusters2) + ".")
    elif clusters2:
        why = ("needs all four CoCoNot non-safety splits and at least one other; this run has "
               f"{len(present)} of the four")
        checks.append(_not_measured(two_clusters, coconot_vs_rest, why,
                                    f"{src} → names"))
        text.append("The paper's two-cluster test needs all four CoCoNot non-safety splits and at "
                    f"least one other; this run has {len(present)} of them, so it is not checked.")
    else:
        checks.append(_not_measured(two_clusters, coconot_vs_rest, no_clusters or no_k2,
                                    f"{src} → clustering"))
    best_k = geo.get("best_k")
    best_sil = num(s.get("best_silhouette"))
    if 2 in sil and sil[2] is not None:
        checks.append(_check(
            "silhouette at k = 2", fmt(sil[2], 3), f"about {PAPER['silhouette']}",
            abs(sil[2] - PAPER["silhouette"]) <= SILHOUETTE_TOLERANCE,
            f"within ±{SILHOUETTE_TOLERANCE:.2f} of the paper's {PAPER['silhouette']}",
            f"{src} → clustering.linkages.{linkage}.silhouette['2']"))
    else:
        checks.append(_not_measured(
            "silhouette at k = 2", f"about {PAPER['silhouette']}",
            no_clusters or no_k2, f"{src} → clustering.linkages.{linkage}.silhouette"))
    if best_k is not None:
        checks.append(_check(
            "number of clusters with the best silhouette", f"k = {best_k} (silhouette "
                                                          f"{fmt(best_sil)})",
            f"k = {PAPER['n_clusters']}", int(best_k) == PAPER["n_clusters"],
            f"the best k over k = {', '.join(str(k) for k in geo.get('ks') or [])} is "
            f"{PAPER['n_clusters']}", f"{src} → clustering.best_k"))
        text.append(f"The silhouette is highest at k = {best_k} ({fmt(best_sil)})"
                    + (f"; at k = 2 it is {fmt(sil.get(2))}"
                       if sil.get(2) is not None and best_k != 2 else "")
                    + f"; the paper reports about {PAPER['silhouette']} with two clusters.")
    else:
        why = no_clusters or geo.get("skipped_reason") or "geometry.json has no best k"
        checks.append(_not_measured("number of clusters with the best silhouette",
                                    f"k = {PAPER['n_clusters']}", why, f"{src} → clustering"))
        text.append(f"Clustering was not measured in this run: {why}.")
    boot = geo.get("bootstrap") or {}
    if boot and boot.get("k2_match_fraction") is None:
        text.append("The stability of the k = 2 partition was not measured: "
                    f"{boot.get('k2_reason') or boot.get('reference') or 'no k = 2 partition'}.")
    elif boot.get("k2_match_fraction") is not None:
        text.append(f"Stability: {pct(boot['k2_match_fraction'])} of {boot.get('n_resamples')} "
                    "bootstrap resamples reproduce the k = 2 partition exactly (mean adjusted Rand "
                    f"index {fmt(boot.get('k2_ari_mean'))}).")
    return {**base, "status": _verdict(checks), "checks": checks, "text": text,
            "sources": [src]}


def finding_one_knob(steer: Mapping[str, Any]) -> dict:
    """Finding 2 from the ``steering`` section: the trade-off gap within sampling noise,
    judged only when steering moves RR by at least :data:`MIN_RR_MOVE`."""
    base = {"id": "one_knob", "title": "2. Steering along any direction gives nearly the same "
                                       "RR/ORR trade-off (one knob)",
            "claim": "Steering along any category's direction moves refusal on harmful prompts "
                     "(RR) and over-refusal on benign prompts (ORR) along nearly the same curve."}
    if not steer.get("available"):
        return _unavailable(base, steer)
    gap = steer.get("gap") or {}
    rows = (steer.get("table") or {}).get("rows") or []
    src = "steering/metrics.json"
    checks: list[dict] = []
    text: list[str] = []
    spans = [r["rr_span"] for r in rows if r.get("rr_span") is not None]
    moved = max(spans) if spans else None
    base_rates = steer.get("baseline") or {}
    text.append(f"Unsteered (baseline) RR {fmt(base_rates.get('rr'))}, ORR "
                f"{fmt(base_rates.get('orr'))} on {base_rates.get('n_harmful')} harmful and "
                f"{base_rates.get('n_benign')} benign test prompts (judge: {steer.get('judge')}).")
    if rows:
        tops = ", ".join(f"{r['label']} {fmt(r.get('top_rr'))}/{fmt(r.get('top_orr'))}"
                         for r in rows)
        top_alpha = max((r["top_alpha"] for r in rows if r.get("top_alpha") is not None),
                        default=None)
        text.append(f"RR/ORR at the largest alpha ({alpha_key(top_alpha)}): {tops}.")
    probed = moved is not None and moved >= MIN_RR_MOVE
    checks.append(_check(
        "steering moves RR", f"largest RR range along a direction {fmt(moved)}",
        "RR rises with alpha", None if moved is None else probed,
        f"precondition: some direction changes RR by at least {MIN_RR_MOVE} over the alphas "
        "(otherwise the trade-off is not probed and the gap says little)",
        f"{src} → dose_response", precondition=True))
    value = num(gap.get("value"))
    if value is None:
        why = steer.get("gap_reason") or "no trade-off gap in steering/metrics.json"
        checks.append(_not_measured("trade-off gap within sampling noise",
                                    "nearly the same trade-off", why,
                                    f"{src} → tradeoff_gap"))
        text.append(f"No trade-off gap: {why}.")
    else:
        ci = gap.get("ci95")
        pair = " vs ".join(gap.get("pair") or [])
        t = (f"Trade-off gap (largest |ORR difference| at matched RR between two directions): "
             f"{fmt(value, 3)} ({pair} at RR {fmt(gap.get('at_rr'))}); mean over "
             f"{gap.get('n_pairs')} pairs {fmt(gap.get('mean_over_pairs'), 3)}")
        if ci:
            t += f"; bootstrap 95% CI {fmt(ci[0], 3)}–{fmt(ci[1], 3)}"
        if gap.get("p_value") is not None:
            t += (f"; permutation p = {fmt(gap['p_value'], 3)} (pure prompt-sampling noise gives "
                  f"gaps of {fmt(gap.get('null_mean'), 3)} on average, 95th percentile "
                  f"{fmt(gap.get('null_95'), 3)})")
        text.append(t + ". 0 would be one knob exactly.")
        if gap.get("p_value") is not None:
            p = float(gap["p_value"])
            agrees = (p >= ONE_KNOB_ALPHA) if probed else None
            checks.append(_check(
                "trade-off gap within sampling noise", f"gap {fmt(value, 3)}, p = {fmt(p, 3)}",
                "nearly the same trade-off", agrees,
                f"the permutation test does not reject 'every direction is the same knob' at "
                f"{ONE_KNOB_ALPHA} (p ≥ {ONE_KNOB_ALPHA}); only judged when steering moves RR",
                f"{src} → tradeoff_gap.uncertainty.permutation"))
        else:
            agrees = (value <= ONE_KNOB_FALLBACK_GAP) if probed else None
            checks.append(_check(
                "trade-off gap small", f"gap {fmt(value, 3)}", "nearly the same trade-off", agrees,
                f"gap ≤ {ONE_KNOB_FALLBACK_GAP} (no noise estimate in this run)",
                f"{src} → tradeoff_gap.value"))
    if not probed and moved is not None:
        text.append(f"Steering changed RR by at most {fmt(moved)} along any direction, so the "
                    "trade-off curves were barely probed; the gap is not evidence either way.")
    if value is None:  # without a gap there is nothing to judge, whatever RR did
        status = NOT_MEASURED
    else:
        status = _verdict(checks) if probed else "inconclusive"
    return {**base, "status": status, "checks": checks, "text": text, "sources": [src]}


def finding_sae(sae: Mapping[str, Any], steer: Mapping[str, Any]) -> dict:
    """Finding 3 from the ``sae`` section: a shared core, a longer tail, and core-latent
    steering against the directions' trade-off (``steer``: the ``steering`` section)."""
    base = {"id": "sae", "title": "3. SAE latents: a small shared core and a long tail",
            "claim": "In SAE latent space refusal is a small core of latents shared by most "
                     "categories plus a long tail of category-specific latents; steering with "
                     "the core behaves like steering with the directions."}
    if not sae.get("available"):
        return _unavailable(base, sae)
    checks: list[dict] = []
    text: list[str] = []
    src = "sae_analysis/analysis.json"
    core, tail = num(sae.get("core_size")), num(sae.get("tail_size"))
    shared, distinct = num(sae.get("shared_size")), num(sae.get("distinct"))
    k, m, ns = sae.get("core_k"), sae.get("core_min_splits"), len(sae.get("splits") or [])
    no_core = sae.get("core_reason") or (
        None if core is not None and tail is not None
        else f"{src} has no core or tail size for top-{k}")
    splits_text = f"{ns} split" + ("" if ns == 1 else "s")
    if no_core:
        text.append(f"Top-{k} latents of {splits_text}: {int(distinct or 0)} distinct latents.")
    else:
        text.append(f"Top-{k} latents of {splits_text}: {int(distinct or 0)} distinct latents; "
                    f"shared core (in the top-{k} of at least {m} splits) {int(core or 0)}, long "
                    f"tail (in one split only) {int(tail or 0)}, in between {int(shared or 0)}.")
    info = sae.get("sae") or {}
    pos = next((r for r in info.get("metrics") or [] if r.get("set") == "position_all"), None)
    if pos and pos.get("fve") is not None:
        text.append(f"The SAE ({info.get('architecture')}, {info.get('d_sae')} latents, "
                    f"{info.get('source')}) explains {pct(pos['fve'])} of the variance at the "
                    "analysis position (sae/sae.json → metrics.position_all.fve).")
    if no_core:
        checks.append(_not_measured("a shared core exists", "a small core shared by most "
                                    "categories", no_core, f"{src} → summary.core_size"))
        checks.append(_not_measured("the tail is longer than the core", "long tail, small core",
                                    no_core, f"{src} → summary.tail_size"))
        text.append(f"Core and tail were not measured in this run: {no_core}.")
    if core is not None and not no_core:
        checks.append(_check("a shared core exists", f"{int(core)} core latents",
                             "a small core shared by most categories", core >= 1,
                             f"at least one latent in the top-{k} of ≥ {m} of {ns} splits",
                             f"{src} → summary.core_size"))
    if core is not None and tail is not None and not no_core:
        checks.append(_check("the tail is longer than the core",
                             f"tail {int(tail)} vs core {int(core)}", "long tail, small core",
                             tail > core, "more single-split latents than core latents",
                             f"{src} → summary.tail_size"))
    st = sae.get("steering") or {}
    core_label = "core-latent steering follows the directions' trade-off"
    core_paper = "core steering explains the shared knob"
    core_src = "sae_steering/comparison.json → gaps['vector/sae_core']"
    if not st.get("available"):
        checks.append(_not_measured(core_label, core_paper, st.get("reason") or "not run",
                                    core_src))
        text.append(f"Core-latent steering was not measured in this run ({st.get('reason')}).")
    else:
        comp = st.get("comparison") or {}
        core_gap = next((g for g in comp.get("gaps") or []
                         if g.get("label") == "vector/sae_core"), None)
        core_row = next((r for r in (st.get("table") or {}).get("rows") or []
                         if r.get("label") in ("vector/sae_core", "sae_core")), None)
        if core_row:
            text.append(f"Steering with the sum of the core latents' decoder rows: RR "
                        f"{fmt(core_row.get('zero_rr'))} → {fmt(core_row.get('top_rr'))}, ORR "
                        f"{fmt(core_row.get('zero_orr'))} → {fmt(core_row.get('top_orr'))} at "
                        f"alpha {alpha_key(core_row.get('top_alpha'))} "
                        f"(sae_steering/metrics.json).")
        dirs = {r["label"]: r for r in (steer.get("table") or {}).get("rows") or []}
        if core_row and dirs and core_row.get("top_alpha") is not None:
            a = alpha_key(core_row["top_alpha"])
            at = [r["cells"].get(a) for r in dirs.values() if r["cells"].get(a)]
            if at:
                mrr = [num(c.get("rr")) for c in at if num(c.get("rr")) is not None]
                morr = [num(c.get("orr")) for c in at if num(c.get("orr")) is not None]
                if mrr and morr:
                    text.append(f"Direction steering at the same alpha: mean RR "
                                f"{fmt(sum(mrr) / len(mrr))}, mean ORR {fmt(sum(morr) / len(morr))} "
                                f"over {len(at)} directions (steering/metrics.json).")
        if core_row is not None and core_gap and \
                num(core_gap.get("max_over_directions")) is not None:
            cg = num(core_gap["max_over_directions"])
            dg = num((steer.get("gap") or {}).get("value"))
            noise = num((steer.get("gap") or {}).get("null_95"))
            bound = max(x for x in (dg, noise, 0.0) if x is not None)
            span = num(core_row.get("rr_span"))
            moved = span is not None and span >= MIN_RR_MOVE
            checks.append(_check(
                core_label,
                f"core vs directions: max gap {fmt(cg, 3)}, mean {fmt(core_gap.get('mean_over_directions'), 3)}"
                f"; between directions {fmt(dg, 3)}",
                core_paper, (cg <= bound + 1e-9) if moved else None,
                "the core curve's largest gap to any direction curve is no larger than the "
                "largest gap between two directions (or the noise level, null_95); only judged "
                f"when core steering moves RR by ≥ {MIN_RR_MOVE}",
                core_src))
            text.append(f"Largest |ORR difference| at matched RR between the core curve and any "
                        f"direction curve: {fmt(cg, 3)} (between two directions: {fmt(dg, 3)}).")
        else:
            why = ("sae_steering has no sae_core curve or no comparison of it with direction "
                   "steering")
            checks.append(_not_measured(core_label, core_paper, why, core_src))
            text.append(f"No core-latent steering curve ({why}).")
    return {**base, "status": _verdict(checks), "checks": checks, "text": text,
            "sources": [src, "sae/sae.json", "sae_steering/comparison.json"]}


def findings(data: Mapping[str, Any]) -> list[dict]:
    """The paper's three findings, measured on this run, from the built sections.

    Args:
        data: the report data (its ``summary``, ``geometry``, ``steering`` and ``sae``).

    Example:
        >>> [f["status"] for f in findings(data)]  # doctest: +SKIP
    """
    model = (data.get("summary") or {}).get("model")
    return [finding_geometry(data.get("geometry") or {}, model),
            finding_one_knob(data.get("steering") or {}),
            finding_sae(data.get("sae") or {}, data.get("steering") or {})]
