"""``report.md``: a short Markdown summary of the report's data for a terminal or a pull
request."""

from __future__ import annotations

import html
from typing import Any

from .build import ReportData
from .format import fmt, pct, secs

__all__ = ["render_markdown"]


def _md_text(x: Any) -> str:
    """Text for a Markdown table cell: HTML-escaped, one line, pipes escaped."""
    s = html.escape(" ".join(str(x).split()), quote=False)
    return s.replace("|", "\\|")


def render_markdown(data: ReportData) -> str:
    """A short Markdown summary for a terminal or a pull request.

    Args:
        data: what :func:`~refusal_atlas.report.build_report` returned.

    Example:
        >>> print(render_markdown(data))  # doctest: +SKIP
    """
    s = data.get("summary") or {}
    L: list[str] = [f"# {_md_text(data.get('title'))}", ""]
    if s.get("available"):
        L.append(f"Model `{s.get('model')}` · layer {s.get('layer')} · position {s.get('position')} · "
                 f"judge {s.get('steering_judge') or s.get('labels_judge')} · data "
                 f"`{s.get('data')}` ({s.get('n_splits')} splits, {s.get('n_split_prompts')} + "
                 f"{s.get('n_benign_prompts')} benign prompts"
                 + (f"; {s.get('n_labelled')} labelled, {s.get('n_not_labelled')} not labelled "
                    "(lazy)" if s.get("label_all") is False else "")
                 + f") · total {secs(s.get('total_seconds'))}")
    else:
        L.append(f"_{_md_text(s.get('reason'))}_")
    if s.get("judge_note"):
        L.append("")
        L.append(f"> Note: {s['judge_note']}.")
    L += ["", "Full report with figures: `report.html` (opens offline).", "", "## Findings", ""]
    for fd in data.get("findings") or []:
        L.append(f"### {fd['title']} — **{fd['status']}**")
        L.append("")
        for t in fd.get("text") or []:
            L.append(f"- {_md_text(t)}")
        if fd.get("checks"):
            L += ["", "| check | measured | paper | agrees | criterion |", "|---|---|---|---|---|"]
            for c in fd["checks"]:
                ag = {True: "yes", False: "no", None: "n/a"}[c.get("agrees")]
                L.append(f"| {_md_text(c['label'])} | {_md_text(c['measured'])} | "
                         f"{_md_text(c['paper'])} | {ag} | {_md_text(c['criterion'])} "
                         f"(`{_md_text(c['source'])}`) |")
        L.append("")
    geo = data.get("geometry") or {}
    L += ["## Geometry", ""]
    if geo.get("available"):
        gs = geo.get("summary") or {}
        if geo.get("n_pairs") == 1:
            cos = (f"One pair ({' vs '.join(gs.get('min_pair') or [])}): cosine "
                   f"{fmt(gs.get('min_offdiag_cosine'))}")
        else:
            cos = (f"Cosine {fmt(gs.get('min_offdiag_cosine'))} … "
                   f"{fmt(gs.get('max_offdiag_cosine'))} (mean {fmt(gs.get('mean_offdiag_cosine'))})")
        if geo.get("best_k") is not None:
            cl_text = f"best k {geo['best_k']} (silhouette {fmt(gs.get('best_silhouette'))})"
        else:
            cl_text = f"clustering not measured in this run: {geo.get('clustering_reason')}"
        L.append(f"{_md_text(cos)}; {_md_text(cl_text)}. Source: `geometry/geometry.json`.")
        for k, cl in (geo.get("clusters_by_k") or {}).items():
            if k in ("2", str(geo.get("best_k"))):
                L.append(f"- k = {k}: " + _md_text(" | ".join(", ".join(c) for c in cl)))
    else:
        L.append(f"_{_md_text(geo.get('reason'))}_")
    st = data.get("steering") or {}
    L += ["", "## Steering (RR / ORR)", ""]
    if st.get("available"):
        tab = st.get("table") or {}
        keys = tab.get("alpha_keys") or []
        if tab.get("rows"):
            L.append("| direction | " + " | ".join(f"α={k}" for k in keys) + " |")
            L.append("|---|" + "---|" * len(keys))
        else:
            L.append("_No dose-response rows in `steering/metrics.json`._")
        for r in tab.get("rows") or []:
            L.append(f"| {_md_text(r['label'])} | " + " | ".join(
                f"{fmt((r['cells'].get(k) or {}).get('rr'))} / {fmt((r['cells'].get(k) or {}).get('orr'))}"
                if k in r["cells"] else "" for k in keys) + " |")
        g = st.get("gap") or {}
        if g.get("value") is None:
            L += ["", f"No trade-off gap: {_md_text(st.get('gap_reason'))}."]
        else:
            ci = g.get("ci95")
            L.append("")
            L.append(f"Trade-off gap {fmt(g['value'], 3)} ({' vs '.join(g.get('pair') or [])})"
                     + (f", 95% CI {fmt(ci[0], 3)}–{fmt(ci[1], 3)}" if ci else "")
                     + (f", permutation p = {fmt(g['p_value'], 3)}" if g.get("p_value") is not None
                        else "") + ". Source: `steering/metrics.json`.")
    else:
        L.append(f"_{_md_text(st.get('reason'))}_")
    ab = data.get("ablation") or {}
    L += ["", "## Ablation", ""]
    if ab.get("available"):
        b = ab.get("baseline") or {}
        L.append(f"Baseline RR {fmt(b.get('rr'))}, ORR {fmt(b.get('orr'))}. Source: "
                 "`ablation/metrics.json`.")
        if ab.get("rows"):
            L += ["", "| direction | RR | ORR | ΔRR | ΔORR |", "|---|---|---|---|---|"]
        else:
            L += ["", "_No ablation rows in `ablation/metrics.json`._"]
        for r in ab.get("rows") or []:
            L.append(f"| {_md_text(r.get('direction'))} | {fmt(r.get('rr'))} | {fmt(r.get('orr'))} | "
                     f"{fmt(r.get('d_rr'))} | {fmt(r.get('d_orr'))} |")
    else:
        L.append(f"_{_md_text(ab.get('reason'))}_")
    sae = data.get("sae") or {}
    L += ["", "## SAE latents", ""]
    if sae.get("available"):
        L.append(f"Top-{sae.get('core_k')}: core {sae.get('core_size')}, tail "
                 f"{sae.get('tail_size')}, shared {sae.get('shared_size')}, distinct "
                 f"{sae.get('distinct')} (core = in ≥ {sae.get('core_min_splits')} splits). "
                 "Source: `sae_analysis/analysis.json`.")
        if sae.get("core_reason"):
            L.append(f"Shared core vs long tail not measured in this run: "
                     f"{_md_text(sae['core_reason'])}.")
        core = [str(r["latent"]) for r in sae.get("core") or []]
        if core:
            L.append(f"Core latents: {', '.join(core[:30])}")
        comp = ((sae.get("steering") or {}).get("comparison") or {})
        for gp in comp.get("gaps") or []:
            L.append(f"- {_md_text(gp['label'])}: max gap to a direction "
                     f"{fmt(gp.get('max_over_directions'), 3)} (`sae_steering/comparison.json`)")
    else:
        L.append(f"_{_md_text(sae.get('reason'))}_")
    sty = data.get("style") or {}
    L += ["", "## Refusal style", ""]
    if sty.get("available"):
        L.append(f"Classifier: {sty.get('classifier')}. Source: `style/summary.json`.")
        if sty.get("empty_reason"):
            L += ["", f"_{_md_text(sty['empty_reason'])}._"]
        rows = ([sty["baseline"]] if sty.get("baseline") else []) + (sty.get("rows") or [])
        if rows:
            L += ["", "| direction | refusals | dominant | purity |", "|---|---|---|---|"]
        for r in rows:
            L.append(f"| {_md_text(r['name'])} | {r.get('n_refusals')} | {r.get('dominant') or '–'} | "
                     f"{pct(r.get('purity'))} |")
    else:
        L.append(f"_{_md_text(sty.get('reason'))}_")
    L += ["", "## Beyond the paper", ""]
    by = data.get("beyond") or {}
    if by.get("available"):
        for st in by.get("stages") or []:
            L += [f"### {_md_text(st['title'])}", ""]
            if not st.get("available"):
                L += [f"_{_md_text(st.get('reason'))}_", ""]
                continue
            for f in st.get("findings") or []:
                subject = f"{f['subject']}: " if f.get("subject") else ""
                L += [f"- **{_md_text(subject + f['question'])}** — verdict: "
                      f"**{_md_text(f['verdict'])}**",
                      f"  - measured: {_md_text(f['measured'])}",
                      f"  - criterion: {_md_text(f['criterion'])}"]
            L += ["", f"Source: `{st['source']}`.", ""]
    else:
        L.append(f"_{_md_text(by.get('reason'))}_")
    if s.get("timings"):
        L += ["", "## Timings", "", "| stage | seconds |", "|---|---|"]
        for t in s["timings"]:
            L.append(f"| {t['stage']} | {fmt(t['seconds'], 1)} |")
    if data.get("problems"):
        L += ["", "## Problems reading artifacts", ""]
        L += [f"- {_md_text(p)}" for p in data["problems"]]
    return "\n".join(L) + "\n"
