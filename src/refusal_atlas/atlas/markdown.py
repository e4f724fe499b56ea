"""``compare.md``: the atlas as a short Markdown summary (for a terminal, a pull request or
``docs/results.md``)."""

from __future__ import annotations

from ..report.format import fmt, pct, secs
from ..report.markdown import _md_text as cell
from .build import AtlasData

__all__ = ["render_atlas_markdown"]


def _clusters(groups: list[list[str]]) -> str:
    return " · ".join("{" + ", ".join(g) + "}" for g in groups) or "–"


def render_atlas_markdown(data: AtlasData) -> str:
    """The atlas's tables in Markdown (every name escaped for a table cell).

    Args:
        data: what :func:`~refusal_atlas.atlas.build_atlas` returned.

    Example:
        >>> print(render_atlas_markdown(data))  # doctest: +SKIP
    """
    models = data["models"]
    L = [f"# {cell(data['title'])}", "", "Full page with figures: `compare.html` (opens offline).",
         "", "## Models", "",
         "| model | data (limit) | directions | layer | mean off-diag cosine (min … max) | "
         "best k (silhouette) | trade-off gap (p) | SAE core / tail | time |",
         "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        g, st, ly, sa = m["geometry"], m["steering"], m["layer"], m["sae"]
        layer = (f"{ly['layer']} of {ly['n_layers']} ({pct(ly['depth'])})" if ly["available"]
                 else "–")
        cos = (f"{fmt(g['mean_offdiag'])} ({fmt(g['min_offdiag'])} … {fmt(g['max_offdiag'])})"
               if g["available"] else "–")
        k = (f"{g['best_k']} ({fmt(g['best_silhouette'])})"
             if g["available"] and g["best_k"] is not None else "–")
        gap = (f"{fmt(st['gap'], 3)} ({fmt(st['gap_p'], 3)})"
               if st["available"] and st["gap"] is not None else "–")
        sae = (f"{sa['core_size']} / {sa['tail_size']} (top-{sa['core_k']})" if sa["available"]
               else "–")
        L.append(f"| {cell(m['label'])} | `{cell(m['data'])}` ({m['limit'] or 'none'}) | "
                 f"{len(m['splits'])} | {layer} | {cos} | {k} | {gap} | {sae} | "
                 f"{secs(m['total_seconds'])} |")
    L += ["", "## Splits", "", "| split | " + " | ".join(cell(m["label"]) for m in models) + " |",
          "|---|" + "---|" * len(models)]
    for row in data["presence"]:
        L.append(f"| {cell(row['split'])} | " + " | ".join(
            "direction" if s == "direction" else f"**missing**: {cell(s)}"
            for s in row["status"]) + " |")
    L += ["", "## Geometry across models", ""]
    if data["pairs"]:
        L += ["| model A | model B | shared splits | r (off-diagonal cosines) | permutation p |",
              "|---|---|---|---|---|"]
    for p in data["pairs"]:
        if p["r"] is None:
            L.append(f"| {cell(p['a'])} | {cell(p['b'])} | {p['n_splits'] or '–'} | "
                     f"{cell(p['reason'])} | |")
        else:
            how = "exact" if p["exact"] else f"{p['n_perm']} orders, seed {data['seed']}"
            L.append(f"| {cell(p['a'])} | {cell(p['b'])} | {p['n_splits']} ({p['n_pairs']} pairs) "
                     f"| {fmt(p['r'], 3)} | {fmt(p['p_value'], 4)} ({how}) |")
    L += ["", "## Clusters, trade-off and layers", ""]
    for m in models:
        g, st, ly = m["geometry"], m["steering"], m["layer"]
        L.append(f"- **{cell(m['label'])}**: clusters "
                 + (f"k = {g['best_k']}: {cell(_clusters(g['clusters']))}"
                    if g["available"] and g["best_k"] is not None
                    else cell(g.get("clustering_reason") or g.get("reason") or "–"))
                 + "; trade-off gap "
                 + (f"{fmt(st['gap'], 3)} ({cell(' vs '.join(st['gap_pair']))})"
                    if st["available"] and st["gap"] is not None
                    else cell(st.get("gap_reason") or st.get("reason") or "–"))
                 + "; layer " + (cell(f"{ly['layer']}: {ly['why']}") if ly["available"]
                                 else cell(ly.get("reason") or "–")))
    if data["problems"]:
        L += ["", "## Problems reading artifacts", ""] + [f"- {cell(p)}" for p in data["problems"]]
    return "\n".join(L) + "\n"
