"""The report stage: one self-contained ``report.html`` and a ``report.md`` summary.

* :func:`build_report` reads a run folder's artifacts (never a model) and returns a
  JSON-ready :data:`ReportData`: the run summary, per-stage sections and the paper's three
  findings measured on this run (:func:`findings`), each check with the numbers it rests
  on, the paper's value, the criterion used and the artifact the numbers come from.
* :func:`render_html` turns it into one HTML page (Jinja2, autoescape on, so every model
  generation and prompt is shown as text; figures embedded as base64 PNG data URIs; a
  Content-Security-Policy that allows no external resource and only the page's own small
  script). :func:`render_markdown` writes the terminal / pull-request summary.
* :func:`write_report` writes both atomically; the ``report`` pipeline stage calls it.

A section whose stage is missing, disabled or not part of this refusal-atlas says so
("not run: ..."); a malformed artifact becomes a note in its section, never a crash.
See ``docs/report.md`` for where each number comes from.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .artifacts import atomic_path, read_jsonl, write_json

ReportData = dict[str, Any]
"""What :func:`build_report` returns: plain dicts / lists / numbers / strings (JSON-ready)."""

FORMAT = "refusal-atlas/report"
FORMAT_VERSION = 1
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
STAGE = "report"
SECTION_IDS = ("summary", "findings", "pools", "layer-scan", "geometry", "steering", "ablation",
               "sae", "style", "samples")
REPORT_DEPS = ("geometry", "steering", "ablation", "style", "sae_analysis", "sae_steering")
"""Stages the report reads; those not registered in this refusal-atlas are left out."""
KNOWN_STAGES = ("prompts", "labels", "pools", "test_set", "layer_scan", "activations",
                "directions", "geometry", "steering", "ablation", "sae", "sae_analysis",
                "sae_steering", "style")
COCONOT_NON_SAFETY = ("CocoNot_Humanizing", "CocoNot_Incomplete", "CocoNot_Indeterminate",
                      "CocoNot_Unsupported")
SWEEP_STAGES = ("steering", "ablation", "sae_steering")
GROUP_ORDER = ("HR", "HC", "BR", "BC")

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

_SCRIPT = """(function () {
  var q = document.getElementById('sample-filter');
  var g = document.getElementById('sample-group');
  if (!q || !g) { return; }
  function apply() {
    var text = q.value.toLowerCase(), group = g.value;
    var conds = document.querySelectorAll('#samples details.cond');
    for (var i = 0; i < conds.length; i++) {
      var d = conds[i];
      d.hidden = d.getAttribute('data-cond').toLowerCase().indexOf(text) < 0;
      var rows = d.querySelectorAll('.sample');
      for (var j = 0; j < rows.length; j++) {
        rows[j].hidden = group !== '' && rows[j].getAttribute('data-group') !== group;
      }
    }
  }
  q.addEventListener('input', apply);
  g.addEventListener('change', apply);
  function toggle(open) {
    return function () {
      var conds = document.querySelectorAll('#samples details.cond');
      for (var i = 0; i < conds.length; i++) { if (!conds[i].hidden) { conds[i].open = open; } }
    };
  }
  document.getElementById('samples-open').addEventListener('click', toggle(true));
  document.getElementById('samples-close').addEventListener('click', toggle(false));
})();"""


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       f"script-src '{_script_hash(_SCRIPT)}'; base-uri 'none'; form-action 'none'")
"""The page may load nothing from anywhere and run only its own filter script."""


# ---------------------------------------------------------------------------
# Small helpers


def _read_json(path: Path) -> Any:
    """A JSON artifact, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _f(x: Any, digits: int = 2) -> str:
    v = _num(x)
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(x: Any) -> str:
    v = _num(x)
    return "–" if v is None else f"{100 * v:.0f}%"


def _rel(run_dir: Path, path: Path) -> str:
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        return str(path)


def _figure(run_dir: Path, rel: str, caption: str) -> dict | None:
    path = run_dir / rel
    if not path.is_file():
        return None
    return {"path": rel, "caption": caption, "bytes": path.stat().st_size}


def _stage_names() -> list[str]:
    """Registered stage names in pipeline order (without the report itself)."""
    from .pipeline import stages

    return [n for n in stages() if n != STAGE]


def _run_config(cfg: Mapping[str, Any] | None):
    if not cfg:
        return None
    try:
        from .config import RunConfig

        return RunConfig.model_validate(cfg)
    except Exception:  # noqa: BLE001 - an older/newer config: treat every stage as enabled
        return None


_DISABLED_BY = {"ablation": "steering.ablation = false", "sae": "sae.enabled = false",
                "sae_analysis": "sae.enabled = false", "sae_steering": "sae.enabled = false",
                "style": "style.enabled = false"}


def stage_states(run_dir: str | Path, config: Mapping[str, Any] | None = None
                 ) -> OrderedDict[str, dict]:
    """``{stage: {status, seconds, finished_at, summary, reason}}`` for every known stage.

    status: ``done`` (``_done.json`` present), ``disabled`` (by the run's config),
    ``unavailable`` (this refusal-atlas has no such stage), ``incomplete`` (started, not
    finished) or ``missing``.
    """
    run_dir = Path(run_dir)
    try:
        registered = _stage_names()
        from .pipeline import stages

        registry = stages()
    except Exception:  # noqa: BLE001
        registered, registry = [], {}
    rc = _run_config(config)
    names = list(dict.fromkeys([*registered, *KNOWN_STAGES]))
    out: OrderedDict[str, dict] = OrderedDict()
    for name in names:
        folder = run_dir / name
        marker = _read_json(folder / "_done.json")
        state: dict[str, Any] = {"name": name, "status": "missing", "seconds": None,
                                 "finished_at": None, "summary": None, "reason": None}
        enabled = True
        if rc is not None and name in registry:
            try:
                enabled = bool(registry[name].enabled(rc))
            except Exception:  # noqa: BLE001
                enabled = True
        if isinstance(marker, dict):
            state.update(status="done", seconds=_num(marker.get("seconds")),
                         finished_at=marker.get("finished_at"), summary=marker.get("summary"))
            if not enabled:
                state["reason"] = (f"disabled in this run's config ({_DISABLED_BY.get(name, name)})"
                                   "; results are from an earlier run")
        elif name not in registry and registry:
            state.update(status="unavailable",
                         reason=f"this refusal-atlas has no stage {name!r}")
        elif not enabled:
            state.update(status="disabled",
                         reason=f"the stage is disabled ({_DISABLED_BY.get(name, 'config')})")
        elif (folder / "_started.json").exists():
            state.update(status="incomplete",
                         reason=f"the stage started but has not finished ({name}/_done.json "
                                "missing)")
        else:
            state["reason"] = f"the stage has not run in this run folder ({name}/_done.json " \
                              "missing)"
        out[name] = state
    return out


def _not_run(states: Mapping[str, dict], *names: str) -> str | None:
    """None when every stage is done, else "not run: ..." for the first one that is not."""
    for name in names:
        st = states.get(name)
        if st is None:
            return f"not run: this refusal-atlas has no stage {name!r}"
        if st["status"] != "done":
            return f"not run: {name}: {st['reason']}"
    return None


# ---------------------------------------------------------------------------
# Sections


def _summary_section(run_dir: Path, cfg: Mapping[str, Any], states: Mapping[str, dict]) -> dict:
    model = (cfg.get("model") or {})
    layer = _read_json(run_dir / "layer_scan" / "layer.json") or {}
    suite = _read_json(run_dir / "prompts" / "suite.json") or {}
    counts = _read_json(run_dir / "labels" / "counts.json") or {}
    steer_metrics = _read_json(run_dir / "steering" / "metrics.json") or {}
    test_set = _read_json(run_dir / "test_set" / "test_set.json") or {}
    acts = cfg.get("activations") or {}
    steering_cfg = cfg.get("steering") or {}
    timings = [{"stage": n, "seconds": s["seconds"], "finished_at": s["finished_at"]}
               for n, s in states.items() if s["status"] == "done"]
    splits = suite.get("splits") or {}
    benign = suite.get("benign") or {}
    labels_judge = counts.get("judge") or (cfg.get("labels") or {}).get("judge")
    steering_judge = steer_metrics.get("judge") or steering_cfg.get("judge")
    approximate = bool(counts.get("approximate_judge")) or bool(steer_metrics.get("judge_approximate"))
    return {
        "model": model.get("name"), "dtype": model.get("dtype"), "device": model.get("device"),
        "preset": cfg.get("preset"),
        "layer": layer.get("layer", acts.get("layer")),
        "layer_reason": layer.get("reason"), "n_layers": layer.get("n_layers"),
        "position": layer.get("position", acts.get("position")),
        "labels_judge": labels_judge, "steering_judge": steering_judge,
        "judge_approximate": approximate,
        "judge_note": ("the substring judge approximates refusal judging (METHOD.md); "
                       "use --judge wildguard for reference numbers")
        if approximate else None,
        "data": suite.get("name") or (cfg.get("data") or {}).get("suite"),
        "n_splits": len(splits), "n_split_prompts": sum(int(v) for v in splits.values()),
        "n_benign_prompts": sum(int(v) for v in benign.values()),
        "n_labelled": counts.get("n_prompts"),
        "judge_parse_errors": counts.get("judge_parse_errors"),
        "labels_max_new_tokens": counts.get("max_new_tokens"),
        "steering_max_new_tokens": steering_cfg.get("max_new_tokens"),
        "limit": (cfg.get("data") or {}).get("limit"),
        "test_set": {g: len(v) for g, v in (test_set.get("groups") or {}).items()},
        "timings": timings,
        "total_seconds": sum(t["seconds"] or 0.0 for t in timings),
        "stages": [{"name": n, "status": s["status"], "reason": s["reason"],
                    "seconds": s["seconds"]} for n, s in states.items()],
        "sources": ["config.json", "layer_scan/layer.json", "prompts/suite.json",
                    "labels/counts.json", "test_set/test_set.json", "*/_done.json (seconds)"],
    }


def _pools_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    reason = _not_run(states, "labels", "pools", "test_set")
    if reason:
        return {"available": False, "reason": reason}
    rows = _read_json(run_dir / "test_set" / "pool_report.json") or []
    counts = _read_json(run_dir / "labels" / "counts.json") or {}
    test_set = _read_json(run_dir / "test_set" / "test_set.json") or {}
    done = states["pools"].get("summary") or {}
    return {
        "available": True, "rows": rows,
        "judge": counts.get("judge"), "approximate": counts.get("approximate_judge"),
        "parse_errors": counts.get("judge_parse_errors"),
        "test_set": {g: len(v) for g, v in (test_set.get("groups") or {}).items()},
        "test_seed": test_set.get("seed"),
        "splits_with_direction": done.get("splits_with_direction"),
        "warnings": done.get("warnings") or [],
        "sources": ["test_set/pool_report.json", "labels/counts.json", "test_set/test_set.json",
                    "pools/_done.json"],
    }


def _layer_scan_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    layer = _read_json(run_dir / "layer_scan" / "layer.json")
    if states.get("layer_scan", {}).get("status") != "done" or not layer:
        return {"available": False, "reason": _not_run(states, "layer_scan")
                or "not run: layer_scan/layer.json is missing"}
    scan = _read_json(run_dir / "layer_scan" / "layer_scan.json") or {}
    layers = scan.get("layers") or []
    sep = scan.get("separation") or []
    acc = scan.get("accuracy") or []
    chosen = layer.get("layer")
    at = layers.index(chosen) if chosen in layers else None
    best = max(range(len(sep)), key=lambda i: sep[i]) if sep else None
    return {
        "available": True, "layer": chosen, "position": layer.get("position"),
        "reason": layer.get("reason"), "n_layers": layer.get("n_layers"),
        "separation_at_layer": sep[at] if at is not None and at < len(sep) else None,
        "accuracy_at_layer": acc[at] if at is not None and at < len(acc) else None,
        "best_layer": layers[best] if best is not None and best < len(layers) else None,
        "best_separation": sep[best] if best is not None else None,
        "figure": _figure(run_dir, "layer_scan/layer_scan.png",
                          "HR/BC separation per layer (layer_scan/layer_scan.png)"),
        "sources": ["layer_scan/layer.json", "layer_scan/layer_scan.json"],
    }


def _clusters(names: Sequence[str], labels: Sequence[int] | None) -> list[list[str]]:
    if not labels:
        return []
    return [[names[i] for i in range(len(names)) if labels[i] == c]
            for c in range(max(labels) + 1)]


def _geometry_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    reason = _not_run(states, "geometry")
    g = _read_json(run_dir / "geometry" / "geometry.json")
    if reason or not isinstance(g, dict):
        return {"available": False, "reason": reason or "not run: geometry/geometry.json missing"}
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
        within = {r["split"]: _num(r["within_mean"]) for r in boot_rows}
        pairs = boot.get("cross_split") or []
        n_distinct = 0
        counted = 0
        for pr in pairs:
            wa, wb, m = within.get(pr.get("a")), within.get(pr.get("b")), _num(pr.get("mean"))
            if None in (wa, wb, m):
                continue
            counted += 1
            n_distinct += int(m < min(wa, wb))
        distinct = {"n_pairs": counted, "n_distinct": n_distinct,
                    "definition": "a pair is distinct when the mean cosine between the two "
                                  "splits' resampled directions is below both splits' mean "
                                  "within-split resample cosine (geometry.json → bootstrap)"}
    directions = _read_json(run_dir / "directions" / "directions.json") or {}
    dir_rows = []
    for name, d in (directions.get("directions") or {}).items():
        dir_rows.append({"split": name, "n_hr": d.get("n_hr"), "n_bc": d.get("n_bc"),
                         "hr_proj_mean": d.get("hr_proj_mean"), "bc_proj_mean": d.get("bc_proj_mean"),
                         "projection_gap": d.get("projection_gap"), "raw_norm": d.get("raw_norm"),
                         "layer": d.get("layer")})
    figures = [f for f in (
        _figure(run_dir, "geometry/cosine_heatmap.png", "cosine similarity of the directions"),
        _figure(run_dir, "geometry/dendrogram_average.png", "dendrogram, average linkage on 1 - cosine"),
        _figure(run_dir, "geometry/dendrogram_complete.png", "dendrogram, complete linkage on 1 - cosine"),
        _figure(run_dir, "geometry/mds.png", "2-D metric MDS of 1 - cosine"),
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


def _pivot(dose: Sequence[Mapping[str, Any]]) -> dict:
    """dose_response rows -> {alphas, rows: [{label, cells: {alpha: {rr, orr}}, top}]}."""
    alphas = sorted({float(r["alpha"]) for r in dose if _num(r.get("alpha")) is not None})
    curves: OrderedDict[str, dict] = OrderedDict()
    for r in dose:
        c = curves.setdefault(r.get("label") or r.get("curve") or "?",
                              {"label": r.get("label") or r.get("curve"), "cells": {}})
        c["cells"][_alpha_key(r["alpha"])] = {"rr": r.get("rr"), "orr": r.get("orr"),
                                              "accuracy": r.get("accuracy")}
    rows = []
    for c in curves.values():
        present = [a for a in alphas if _alpha_key(a) in c["cells"]]
        top = c["cells"][_alpha_key(max(present))] if present else {}
        zero = c["cells"].get(_alpha_key(0.0), {})
        rrs = [_num(v.get("rr")) for v in c["cells"].values() if _num(v.get("rr")) is not None]
        rows.append({"label": c["label"], "cells": c["cells"],
                     "top_alpha": max(present) if present else None,
                     "top_rr": top.get("rr"), "top_orr": top.get("orr"),
                     "zero_rr": zero.get("rr"), "zero_orr": zero.get("orr"),
                     "rr_span": (max(rrs) - min(rrs)) if rrs else None})
    return {"alphas": alphas, "alpha_keys": [_alpha_key(a) for a in alphas], "rows": rows}


def _alpha_key(a: Any) -> str:
    v = _num(a)
    if v is None:
        return str(a)
    return str(int(v)) if v.is_integer() else repr(v)


def _gap_view(gap: Mapping[str, Any] | None) -> dict | None:
    if not gap:
        return None
    unc = gap.get("uncertainty") or {}
    boot = unc.get("bootstrap") or {}
    perm = unc.get("permutation") or {}
    return {"value": gap.get("value"), "pair": gap.get("pair"), "at_rr": gap.get("at_rr"),
            "overlap": gap.get("overlap"), "mean_over_pairs": gap.get("mean_over_pairs"),
            "n_curves": gap.get("n_curves"), "n_pairs": gap.get("n_pairs"),
            "pairs_without_overlap": gap.get("pairs_without_overlap") or [],
            "non_monotone": gap.get("non_monotone") or [],
            "ci95": boot.get("value_ci95"), "mean_ci95": boot.get("mean_over_pairs_ci95"),
            "n_boot": boot.get("n"), "p_value": perm.get("p_value"),
            "null_mean": perm.get("null_mean"), "null_95": perm.get("null_95"),
            "n_perm": perm.get("n"), "definition": gap.get("definition"),
            "uncertainty_definition": unc.get("definition")}


def _steering_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    reason = _not_run(states, "steering")
    m = _read_json(run_dir / "steering" / "metrics.json")
    if reason or not isinstance(m, dict):
        return {"available": False, "reason": reason or "not run: steering/metrics.json missing"}
    conds = m.get("conditions") or {}
    base = conds.get("baseline") or {}
    dose = m.get("dose_response") or []
    rpo = (m.get("rr_per_orr") or {}).get("curves") or {}
    sweep = m.get("sweep") or {}
    return {
        "available": True, "judge": m.get("judge"), "judge_note": m.get("judge_note"),
        "alphas": m.get("alphas"), "n_rows": m.get("n_rows"),
        "baseline": {"rr": base.get("rr"), "orr": base.get("orr"),
                     "n_harmful": base.get("parsed_harmful"), "n_benign": base.get("parsed_benign")},
        "table": _pivot(dose), "gap": _gap_view(m.get("tradeoff_gap")),
        "rr_per_orr": [{"label": k, **v} for k, v in rpo.items()],
        "parse_errors": sum(int(c.get("parse_errors") or 0) for c in conds.values()),
        "generation_seconds": sweep.get("generation_seconds"),
        "figures": [f for f in (
            _figure(run_dir, "steering/dose_response.png", "RR (solid) and ORR (dashed) against alpha"),
            _figure(run_dir, "steering/tradeoff.png", "ORR against RR along each direction; the "
                                                     "largest gap is marked"),
        ) if f],
        "sources": ["steering/metrics.json", "steering/results.jsonl"],
    }


def _ablation_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    reason = _not_run(states, "ablation")
    m = _read_json(run_dir / "ablation" / "metrics.json")
    if reason or not isinstance(m, dict):
        return {"available": False, "reason": reason or "not run: ablation/metrics.json missing"}
    base = (m.get("conditions") or {}).get("baseline") or {}
    return {
        "available": True, "judge": m.get("judge"), "rows": m.get("ablation") or [],
        "baseline": {"rr": base.get("rr"), "orr": base.get("orr")},
        "figure": _figure(run_dir, "ablation/ablation.png", "RR and ORR after ablating each direction"),
        "sources": ["ablation/metrics.json"],
    }


def _sae_section(run_dir: Path, states: Mapping[str, dict], max_tail: int = 5) -> dict:
    out: dict[str, Any] = {"available": False}
    reason = _not_run(states, "sae", "sae_analysis")
    meta = _read_json(run_dir / "sae" / "sae.json")
    if isinstance(meta, dict):
        metrics = meta.get("metrics") or {}
        out["sae"] = {
            "source": meta.get("source"), "spec": meta.get("spec"),
            "hook_layer": meta.get("hook_layer"), "d_in": meta.get("d_in"),
            "d_sae": meta.get("d_sae"), "architecture": meta.get("architecture"),
            "k": meta.get("k"), "note": meta.get("note"),
            "metrics": [{"set": k, "fve": (v or {}).get("fve"), "l0": (v or {}).get("l0"),
                         "dead_fraction": (v or {}).get("dead_fraction"), "n": (v or {}).get("n")}
                        for k, v in metrics.items() if isinstance(v, dict)],
            "train_seconds": (meta.get("train") or {}).get("seconds"),
        }
        out["sae_figure"] = _figure(run_dir, "sae/training.png", "SAE training curve")
    a = _read_json(run_dir / "sae_analysis" / "analysis.json")
    if reason or not isinstance(a, dict):
        out["reason"] = reason or "not run: sae_analysis/analysis.json missing"
    else:
        ks = [int(k) for k in a.get("ks") or []]
        core_k = int(a.get("core_k") or (max(ks) if ks else 0))
        ck = str(core_k)
        s = a.get("summary") or {}
        info = a.get("latent_info") or {}
        examples = a.get("examples") or {}
        splits = list(a.get("splits") or [])
        pop = (a.get("popularity") or {}).get(ck) or {}
        top_by_split = (a.get("top") or {}).get(ck) or {}
        entry_of = {(sp, str(e.get("latent"))): e for sp, lst in top_by_split.items() for e in lst}

        def latent_row(j: Any, split: str | None = None) -> dict:
            key = str(j)
            li = info.get(key) or {}
            scores = li.get("score") or {}
            vals = [_num(v) for v in scores.values() if _num(v) is not None]
            e = entry_of.get((split, key)) if split else None
            return {"latent": int(j), "splits": pop.get(key) or [],
                    "popularity": len(pop.get(key) or []),
                    "mean_score": (sum(vals) / len(vals)) if vals else None,
                    "score": (e or {}).get("score"), "hr_frac": (e or {}).get("hr_frac"),
                    "bc_frac": (e or {}).get("bc_frac"),
                    "neuronpedia": li.get("neuronpedia"),
                    "examples": examples.get(key) or []}

        core = [latent_row(j) for j in (a.get("core") or {}).get(ck) or []]
        tails = []
        for split in splits:
            lat = ((a.get("tail") or {}).get(ck) or {}).get(split) or []
            tails.append({"split": split, "n": len(lat),
                          "latents": [latent_row(j, split) for j in lat[:max_tail]]})
        per_k = [{"k": k, "core": (s.get("core_size") or {}).get(str(k)),
                  "tail": (s.get("tail_size") or {}).get(str(k)),
                  "shared": (s.get("shared_size") or {}).get(str(k)),
                  "distinct": (s.get("distinct_top_latents") or {}).get(str(k))} for k in ks]
        figs = [f for f in (
            _figure(run_dir, "sae_analysis/popularity.png", "latents by popularity (number of "
                                                            "splits whose top-K holds them)"),
            _figure(run_dir, "sae_analysis/core_scores.png", "scores of the core latents and each "
                                                             "split's best tail latent"),
            _figure(run_dir, f"sae_analysis/overlap_top{core_k}.png",
                    f"shared latents between the splits' top-{core_k}"),
        ) if f]
        out.update({
            "available": True, "ks": ks, "core_k": core_k,
            "core_min_splits": a.get("core_min_splits"), "splits": splits,
            "n_hr": a.get("n_hr"), "n_bc": a.get("n_bc"), "per_k": per_k,
            "core_size": (s.get("core_size") or {}).get(ck),
            "tail_size": (s.get("tail_size") or {}).get(ck),
            "shared_size": (s.get("shared_size") or {}).get(ck),
            "distinct": (s.get("distinct_top_latents") or {}).get(ck),
            "core": core, "tails": tails, "max_tail": max_tail,
            "all_splits": ((a.get("intersections") or {}).get(ck) or {}).get("all_splits"),
            "skipped_splits": (a.get("params") or {}).get("skipped_splits") or [],
            "figures": figs,
        })
    # SAE steering
    steer_reason = _not_run(states, "sae_steering")
    sm = _read_json(run_dir / "sae_steering" / "metrics.json")
    if steer_reason or not isinstance(sm, dict):
        out["steering"] = {"available": False,
                           "reason": steer_reason or "not run: sae_steering/metrics.json missing"}
    else:
        vectors = _read_json(run_dir / "sae_steering" / "vectors.json") or {}
        cosines = _read_json(run_dir / "sae_steering" / "cosines.json") or {}
        comparison = _read_json(run_dir / "sae_steering" / "comparison.json")
        comp = None
        if isinstance(comparison, dict):
            cols: list[str] = ["directions_mean"]
            for r in comparison.get("rows") or []:
                for key in r:
                    if key not in ("alpha",) and key not in cols:
                        cols.append(key)
            comp = {"columns": cols, "rows": comparison.get("rows") or [],
                    "gaps": [{"label": k, **{kk: v.get(kk) for kk in
                                             ("own_direction", "max_over_directions",
                                              "mean_over_directions")}}
                             for k, v in (comparison.get("gaps") or {}).items()],
                    "directions_gap": comparison.get("directions_tradeoff_gap"),
                    "same_judge": comparison.get("same_judge"),
                    "alpha_mode": comparison.get("sae_alpha_mode")}
        out["steering"] = {
            "available": True, "judge": sm.get("judge"), "alphas": sm.get("alphas"),
            "table": _pivot(sm.get("dose_response") or []),
            "gap": _gap_view(sm.get("tradeoff_gap")),
            "vectors": [{k: v.get(k) for k in ("name", "set", "split", "n_latents", "raw_norm",
                                                  "normalized", "layer", "latents")}
                        for v in vectors.get("vectors") or []],
            "splits_chosen_by": vectors.get("splits_chosen_by"),
            "warnings": vectors.get("warnings") or [],
            "cosines": [{"split": k, **v} for k, v in (cosines.get("per_split") or {}).items()],
            "core_cosine": cosines.get("core"),
            "comparison": comp,
            "figures": [f for f in (
                _figure(run_dir, "sae_steering/tradeoff_vs_directions.png",
                        "ORR against RR: directions (grey) and SAE latent sets (colour)"),
                _figure(run_dir, "sae_steering/dose_response.png",
                        "SAE steering: RR (solid) and ORR (dashed) against alpha"),
                _figure(run_dir, "sae_steering/tradeoff.png", "SAE steering: ORR against RR"),
            ) if f],
            "sources": ["sae_steering/metrics.json", "sae_steering/comparison.json",
                        "sae_steering/vectors.json", "sae_steering/cosines.json"],
        }
    out["sources"] = ["sae/sae.json", "sae_analysis/analysis.json"]
    return out


def _style_section(run_dir: Path, states: Mapping[str, dict]) -> dict:
    reason = _not_run(states, "style")
    s = _read_json(run_dir / "style" / "summary.json")
    if reason or not isinstance(s, dict):
        return {"available": False, "reason": reason or "not run: style/summary.json missing"}
    from .style import STYLES

    def row(name: str, v: Mapping[str, Any]) -> dict:
        return {"name": name, "n": v.get("n"), "n_refusals": v.get("n_refusals"),
                "dominant": v.get("dominant"), "purity": v.get("purity"),
                "tied": v.get("tied") or [], "counts": v.get("counts") or {}}

    rows = [row(k, v) for k, v in (s.get("by_direction") or {}).items()]
    base = s.get("baseline")
    return {
        "available": True, "classifier": s.get("classifier"),
        "n_steered_refusals": s.get("n_steered_refusals"), "styles": list(STYLES),
        "rows": rows, "baseline": row("baseline (unsteered)", base) if base else None,
        "figure": _figure(run_dir, "style/styles.png", "share of each refusal style per direction"),
        "sources": ["style/summary.json", "style/styles.jsonl"],
    }


def _pick_prompts(rows: Sequence[Mapping[str, Any]], n: int) -> list[str]:
    """n prompt ids spread over the base labels (HR, HC, BR, BC round-robin), by id."""
    by_group: dict[str, list[str]] = {}
    for r in rows:
        g = r.get("group") if r.get("group") in GROUP_ORDER else "?"
        lst = by_group.setdefault(g, [])
        if r["prompt_id"] not in lst:
            lst.append(r["prompt_id"])
    buckets = [sorted(by_group.get(g, [])) for g in (*GROUP_ORDER, "?")]
    out: list[str] = []
    while len(out) < n and any(buckets):
        for b in buckets:
            if b and len(out) < n:
                out.append(b.pop(0))
    return out


def _samples_section(run_dir: Path, states: Mapping[str, dict], n: int) -> dict:
    if n <= 0:
        return {"available": False, "per_condition": 0, "stages": [],
                "reason": "not shown: report.samples_per_condition = 0"}
    groups = []
    for stage in SWEEP_STAGES:
        st = states.get(stage) or {}
        path = run_dir / stage / "results.jsonl"
        if st.get("status") != "done" or not path.exists():
            groups.append({"stage": stage, "available": False,
                           "reason": _not_run(states, stage) or f"not run: {stage}/results.jsonl "
                                                                "missing"})
            continue
        rows = read_jsonl(path)
        by_cond: OrderedDict[str, list[dict]] = OrderedDict()
        for r in rows:
            by_cond.setdefault(r["condition"], []).append(r)
        ref = by_cond.get("baseline") or (next(iter(by_cond.values())) if by_cond else [])
        picked = _pick_prompts(ref, n)
        conditions, aliased = [], []
        for cid, crow in by_cond.items():
            if cid != "baseline" and all(r.get("generated_as") == "baseline" for r in crow):
                aliased.append(cid)  # alpha = 0: the baseline's generations
                continue
            by_pid = {r["prompt_id"]: r for r in crow}
            samples = []
            for pid in picked:
                r = by_pid.get(pid)
                if r is None:
                    continue
                refused = r.get("refused")
                verdict = ("parse error" if r.get("parse_error") or refused is None
                           else "refused" if refused else "complied")
                samples.append({"prompt_id": pid, "prompt": r.get("prompt", ""),
                                "response": r.get("response", ""), "verdict": verdict,
                                "judge": r.get("judge"), "group": r.get("group"),
                                "label": r.get("label"), "split": r.get("split")})
            refused_n = sum(1 for r in crow if r.get("refused"))
            conditions.append({"id": cid, "n_rows": len(crow), "n_refused": refused_n,
                               "samples": samples})
        groups.append({"stage": stage, "available": True, "conditions": conditions,
                       "aliased": aliased, "source": f"{stage}/results.jsonl"})
    return {"available": any(g["available"] for g in groups), "per_condition": n,
            "stages": groups}


# ---------------------------------------------------------------------------
# Findings


def _verdict(checks: Sequence[Mapping[str, Any]]) -> str:
    decided = [c["agrees"] for c in checks
               if c.get("agrees") is not None and not c.get("precondition")]
    if not decided:
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
            "criterion": criterion, "source": source, "precondition": precondition}


def _finding_geometry(geo: Mapping[str, Any], model: str | None) -> dict:
    base = {"id": "geometry", "title": "1. Refusal directions are geometrically distinct",
            "claim": "Directions computed separately per category are geometrically distinct: "
                     f"pairwise cosine from {PAPER['cosine_min']} to {PAPER['cosine_max']} on "
                     f"{PAPER['model']}, two clusters (the four CoCoNot non-safety splits vs the "
                     f"rest), silhouette about {PAPER['silhouette']}."}
    if not geo.get("available"):
        return {**base, "status": "not measured in this run", "checks": [],
                "text": [f"Not measured in this run ({geo.get('reason')})."], "sources": []}
    s = geo.get("summary") or {}
    names = geo.get("names") or []
    n = len(names)
    cmin, cmax = _num(s.get("min_offdiag_cosine")), _num(s.get("max_offdiag_cosine"))
    checks: list[dict] = []
    text: list[str] = []
    src = "geometry/geometry.json"
    text.append(f"On {model or 'this model'}, the {n} directions have pairwise cosines from "
                f"{_f(cmin)} ({' vs '.join(s.get('min_pair') or [])}) to {_f(cmax)} "
                f"({' vs '.join(s.get('max_pair') or [])}), mean {_f(s.get('mean_offdiag_cosine'))}; "
                f"the paper reports {PAPER['cosine_min']} to {PAPER['cosine_max']} on "
                f"{PAPER['model']}.")
    dp = ((geo.get("bootstrap") or {}).get("distinct_pairs")) or None
    if dp and dp.get("n_pairs"):
        share = dp["n_distinct"] / dp["n_pairs"]
        checks.append(_check(
            "directions differ beyond resampling noise",
            f"{dp['n_distinct']} of {dp['n_pairs']} pairs ({_pct(share)})",
            "distinct directions", share >= 0.5,
            "at least half the pairs are further apart than each split's own resampled "
            "directions (bootstrap cross-split cosine below both within-split cosines)",
            f"{src} → bootstrap"))
        text.append(f"{dp['n_distinct']} of {dp['n_pairs']} pairs are further apart than "
                    "resampling of the training prompts moves a single split's direction.")
    elif cmin is not None:
        checks.append(_check(
            "directions are not all parallel", f"min cosine {_f(cmin)}",
            f"min cosine {PAPER['cosine_min']}", cmin < DISTINCT_COSINE,
            f"the least similar pair has cosine below {DISTINCT_COSINE} (no bootstrap in this run)",
            f"{src} → summary.min_offdiag_cosine"))
    clusters2 = (geo.get("clusters_by_k") or {}).get("2") or []
    sil = {int(r["k"]): _num(r.get(geo.get("primary_linkage", "average")))
           for r in geo.get("silhouette") or []}
    present = [c for c in COCONOT_NON_SAFETY if c in names]
    if clusters2 and len(present) == len(COCONOT_NON_SAFETY) and n > len(present):
        match = any(set(c) == set(COCONOT_NON_SAFETY) for c in clusters2)
        desc = " | ".join(", ".join(c) for c in clusters2)
        checks.append(_check(
            "two clusters: CoCoNot non-safety vs the rest (k = 2)",
            "matches" if match else f"differs: {desc}",
            "{" + ", ".join(COCONOT_NON_SAFETY) + "} vs the other splits", match,
            f"at k = 2 ({geo.get('primary_linkage')} linkage on 1 - cosine) one cluster is exactly "
            "the four CoCoNot non-safety splits",
            f"{src} → clustering.linkages.{geo.get('primary_linkage')}.labels['2']"))
        text.append("At k = 2 the clusters are " + " and ".join("{" + ", ".join(c) + "}"
                                                                  for c in clusters2) + ".")
    elif clusters2:
        text.append("The paper's two-cluster test needs all four CoCoNot non-safety splits and at "
                    f"least one other; this run has {len(present)} of them, so it is not checked.")
    best_k = geo.get("best_k")
    best_sil = _num(s.get("best_silhouette"))
    if 2 in sil and sil[2] is not None:
        checks.append(_check(
            "silhouette at k = 2", _f(sil[2], 3), f"about {PAPER['silhouette']}",
            abs(sil[2] - PAPER["silhouette"]) <= SILHOUETTE_TOLERANCE,
            f"within ±{SILHOUETTE_TOLERANCE:.2f} of the paper's {PAPER['silhouette']}",
            f"{src} → clustering.linkages.{geo.get('primary_linkage')}.silhouette['2']"))
    if best_k is not None:
        checks.append(_check(
            "number of clusters with the best silhouette", f"k = {best_k} (silhouette "
                                                          f"{_f(best_sil)})",
            f"k = {PAPER['n_clusters']}", int(best_k) == PAPER["n_clusters"],
            f"the best k over k = {', '.join(str(k) for k in geo.get('ks') or [])} is "
            f"{PAPER['n_clusters']}", f"{src} → clustering.best_k"))
        text.append(f"The silhouette is highest at k = {best_k} ({_f(best_sil)})"
                    + (f"; at k = 2 it is {_f(sil.get(2))}"
                       if sil.get(2) is not None and best_k != 2 else "")
                    + f"; the paper reports about {PAPER['silhouette']} with two clusters.")
    elif geo.get("skipped_reason"):
        text.append(f"Clustering was skipped: {geo['skipped_reason']}.")
    boot = geo.get("bootstrap") or {}
    if boot.get("k2_match_fraction") is not None:
        text.append(f"Stability: {_pct(boot['k2_match_fraction'])} of {boot.get('n_resamples')} "
                    "bootstrap resamples reproduce the k = 2 partition exactly (mean adjusted Rand "
                    f"index {_f(boot.get('k2_ari_mean'))}).")
    return {**base, "status": _verdict(checks), "checks": checks, "text": text,
            "sources": [src]}


def _finding_one_knob(steer: Mapping[str, Any]) -> dict:
    base = {"id": "one_knob", "title": "2. Steering along any direction gives nearly the same "
                                       "RR/ORR trade-off (one knob)",
            "claim": "Steering along any category's direction moves refusal on harmful prompts "
                     "(RR) and over-refusal on benign prompts (ORR) along nearly the same curve."}
    if not steer.get("available"):
        return {**base, "status": "not measured in this run", "checks": [],
                "text": [f"Not measured in this run ({steer.get('reason')})."], "sources": []}
    gap = steer.get("gap") or {}
    rows = (steer.get("table") or {}).get("rows") or []
    src = "steering/metrics.json"
    checks: list[dict] = []
    text: list[str] = []
    spans = [r["rr_span"] for r in rows if r.get("rr_span") is not None]
    moved = max(spans) if spans else None
    base_rates = steer.get("baseline") or {}
    text.append(f"Unsteered (baseline) RR {_f(base_rates.get('rr'))}, ORR "
                f"{_f(base_rates.get('orr'))} on {base_rates.get('n_harmful')} harmful and "
                f"{base_rates.get('n_benign')} benign test prompts (judge: {steer.get('judge')}).")
    if rows:
        tops = ", ".join(f"{r['label']} {_f(r.get('top_rr'))}/{_f(r.get('top_orr'))}"
                         for r in rows)
        top_alpha = max((r["top_alpha"] for r in rows if r.get("top_alpha") is not None),
                        default=None)
        text.append(f"RR/ORR at the largest alpha ({_alpha_key(top_alpha)}): {tops}.")
    probed = moved is not None and moved >= MIN_RR_MOVE
    checks.append(_check(
        "steering moves RR", f"largest RR range along a direction {_f(moved)}",
        "RR rises with alpha", None if moved is None else probed,
        f"precondition: some direction changes RR by at least {MIN_RR_MOVE} over the alphas "
        "(otherwise the trade-off is not probed and the gap says little)",
        f"{src} → dose_response", precondition=True))
    value = _num(gap.get("value"))
    if value is None:
        text.append("No trade-off gap could be computed (fewer than two curves, or no "
                    "overlapping RR ranges).")
    else:
        ci = gap.get("ci95")
        pair = " vs ".join(gap.get("pair") or [])
        t = (f"Trade-off gap (largest |ORR difference| at matched RR between two directions): "
             f"{_f(value, 3)} ({pair} at RR {_f(gap.get('at_rr'))}); mean over "
             f"{gap.get('n_pairs')} pairs {_f(gap.get('mean_over_pairs'), 3)}")
        if ci:
            t += f"; bootstrap 95% CI {_f(ci[0], 3)}–{_f(ci[1], 3)}"
        if gap.get("p_value") is not None:
            t += (f"; permutation p = {_f(gap['p_value'], 3)} (pure prompt-sampling noise gives "
                  f"gaps of {_f(gap.get('null_mean'), 3)} on average, 95th percentile "
                  f"{_f(gap.get('null_95'), 3)})")
        text.append(t + ". 0 would be one knob exactly.")
        if gap.get("p_value") is not None:
            p = float(gap["p_value"])
            agrees = (p >= ONE_KNOB_ALPHA) if probed else None
            checks.append(_check(
                "trade-off gap within sampling noise", f"gap {_f(value, 3)}, p = {_f(p, 3)}",
                "nearly the same trade-off", agrees,
                f"the permutation test does not reject 'every direction is the same knob' at "
                f"{ONE_KNOB_ALPHA} (p ≥ {ONE_KNOB_ALPHA}); only judged when steering moves RR",
                f"{src} → tradeoff_gap.uncertainty.permutation"))
        else:
            agrees = (value <= ONE_KNOB_FALLBACK_GAP) if probed else None
            checks.append(_check(
                "trade-off gap small", f"gap {_f(value, 3)}", "nearly the same trade-off", agrees,
                f"gap ≤ {ONE_KNOB_FALLBACK_GAP} (no noise estimate in this run)",
                f"{src} → tradeoff_gap.value"))
    if not probed and moved is not None:
        text.append(f"Steering changed RR by at most {_f(moved)} along any direction, so the "
                    "trade-off curves were barely probed; the gap is not evidence either way.")
    status = _verdict(checks) if probed else "inconclusive"
    return {**base, "status": status, "checks": checks, "text": text, "sources": [src]}


def _finding_sae(sae: Mapping[str, Any], steer: Mapping[str, Any]) -> dict:
    base = {"id": "sae", "title": "3. SAE latents: a small shared core and a long tail",
            "claim": "In SAE latent space refusal is a small core of latents shared by most "
                     "categories plus a long tail of category-specific latents; steering with "
                     "the core behaves like steering with the directions."}
    if not sae.get("available"):
        return {**base, "status": "not measured in this run", "checks": [],
                "text": [f"Not measured in this run ({sae.get('reason')})."], "sources": []}
    checks: list[dict] = []
    text: list[str] = []
    src = "sae_analysis/analysis.json"
    core, tail = _num(sae.get("core_size")), _num(sae.get("tail_size"))
    shared, distinct = _num(sae.get("shared_size")), _num(sae.get("distinct"))
    k, m, ns = sae.get("core_k"), sae.get("core_min_splits"), len(sae.get("splits") or [])
    text.append(f"Top-{k} latents of {ns} splits: {int(distinct or 0)} distinct latents; shared "
                f"core (in the top-{k} of at least {m} splits) {int(core or 0)}, long tail (in one "
                f"split only) {int(tail or 0)}, in between {int(shared or 0)}.")
    info = sae.get("sae") or {}
    pos = next((r for r in info.get("metrics") or [] if r["set"] == "position_all"), None)
    if pos and pos.get("fve") is not None:
        text.append(f"The SAE ({info.get('architecture')}, {info.get('d_sae')} latents, "
                    f"{info.get('source')}) explains {_pct(pos['fve'])} of the variance at the "
                    "analysis position (sae/sae.json → metrics.position_all.fve).")
    if core is not None:
        checks.append(_check("a shared core exists", f"{int(core)} core latents",
                             "a small core shared by most categories", core >= 1,
                             f"at least one latent in the top-{k} of ≥ {m} of {ns} splits",
                             f"{src} → summary.core_size"))
    if core is not None and tail is not None:
        checks.append(_check("the tail is longer than the core",
                             f"tail {int(tail)} vs core {int(core)}", "long tail, small core",
                             tail > core, "more single-split latents than core latents",
                             f"{src} → summary.tail_size"))
    st = sae.get("steering") or {}
    if not st.get("available"):
        text.append(f"Core-latent steering was not measured in this run ({st.get('reason')}).")
    else:
        comp = st.get("comparison") or {}
        core_gap = next((g for g in comp.get("gaps") or [] if g["label"] == "vector/sae_core"), None)
        core_row = next((r for r in (st.get("table") or {}).get("rows") or []
                         if r["label"] in ("vector/sae_core", "sae_core")), None)
        if core_row:
            text.append(f"Steering with the sum of the core latents' decoder rows: RR "
                        f"{_f(core_row.get('zero_rr'))} → {_f(core_row.get('top_rr'))}, ORR "
                        f"{_f(core_row.get('zero_orr'))} → {_f(core_row.get('top_orr'))} at "
                        f"alpha {_alpha_key(core_row.get('top_alpha'))} "
                        f"(sae_steering/metrics.json).")
        dirs = {r["label"]: r for r in (steer.get("table") or {}).get("rows") or []}
        if core_row and dirs and core_row.get("top_alpha") is not None:
            a = _alpha_key(core_row["top_alpha"])
            at = [r["cells"].get(a) for r in dirs.values() if r["cells"].get(a)]
            if at:
                mrr = [_num(c.get("rr")) for c in at if _num(c.get("rr")) is not None]
                morr = [_num(c.get("orr")) for c in at if _num(c.get("orr")) is not None]
                if mrr and morr:
                    text.append(f"Direction steering at the same alpha: mean RR "
                                f"{_f(sum(mrr) / len(mrr))}, mean ORR {_f(sum(morr) / len(morr))} "
                                f"over {len(at)} directions (steering/metrics.json).")
        if core_gap and _num(core_gap.get("max_over_directions")) is not None:
            cg = _num(core_gap["max_over_directions"])
            dg = _num((steer.get("gap") or {}).get("value"))
            noise = _num((steer.get("gap") or {}).get("null_95"))
            bound = max(x for x in (dg, noise, 0.0) if x is not None)
            moved = core_row is not None and _num(core_row.get("rr_span")) is not None and \
                core_row["rr_span"] >= MIN_RR_MOVE
            checks.append(_check(
                "core-latent steering follows the directions' trade-off",
                f"core vs directions: max gap {_f(cg, 3)}, mean {_f(core_gap.get('mean_over_directions'), 3)}"
                f"; between directions {_f(dg, 3)}",
                "core steering explains the shared knob",
                (cg <= bound + 1e-9) if moved else None,
                "the core curve's largest gap to any direction curve is no larger than the "
                "largest gap between two directions (or the noise level, null_95); only judged "
                f"when core steering moves RR by ≥ {MIN_RR_MOVE}",
                "sae_steering/comparison.json → gaps['vector/sae_core']"))
            text.append(f"Largest |ORR difference| at matched RR between the core curve and any "
                        f"direction curve: {_f(cg, 3)} (between two directions: {_f(dg, 3)}).")
        elif core_gap is None:
            text.append("No core-latent steering curve (sae_steering has no sae_core condition "
                        "or no comparison with direction steering).")
    return {**base, "status": _verdict(checks), "checks": checks, "text": text,
            "sources": [src, "sae/sae.json", "sae_steering/comparison.json"]}


def findings(data: Mapping[str, Any]) -> list[dict]:
    """The paper's three findings, measured on this run, from the built sections."""
    model = (data.get("summary") or {}).get("model")
    return [_finding_geometry(data.get("geometry") or {}, model),
            _finding_one_knob(data.get("steering") or {}),
            _finding_sae(data.get("sae") or {}, data.get("steering") or {})]


# ---------------------------------------------------------------------------
# Build


def _guard(name: str, fn: Callable[[], dict], problems: list[str]) -> dict:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a malformed artifact must not kill the report
        msg = f"{name}: could not read its artifacts ({type(exc).__name__}: {exc})"
        problems.append(msg)
        return {"available": False, "reason": f"not shown: {msg}", "error": msg}


def build_report(run_dir: str | Path, *, samples_per_condition: int | None = None) -> ReportData:
    """Everything the report shows, read from the run folder's artifacts (JSON-ready)."""
    run_dir = Path(run_dir)
    cfg = _read_json(run_dir / "config.json") or {}
    rcfg = cfg.get("report") or {}
    n = samples_per_condition if samples_per_condition is not None else \
        int(rcfg.get("samples_per_condition", 4) or 0)
    states = stage_states(run_dir, cfg)
    problems: list[str] = []
    data: ReportData = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "title": rcfg.get("title") or f"refusal-atlas: {(cfg.get('model') or {}).get('name') or run_dir.name}",
        "run_dir": str(run_dir.resolve()),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": cfg,
    }
    data["summary"] = _guard("summary", lambda: _summary_section(run_dir, cfg, states), problems)
    data["pools"] = _guard("pools", lambda: _pools_section(run_dir, states), problems)
    data["layer_scan"] = _guard("layer-scan", lambda: _layer_scan_section(run_dir, states), problems)
    data["geometry"] = _guard("geometry", lambda: _geometry_section(run_dir, states), problems)
    data["steering"] = _guard("steering", lambda: _steering_section(run_dir, states), problems)
    data["ablation"] = _guard("ablation", lambda: _ablation_section(run_dir, states), problems)
    data["sae"] = _guard("sae", lambda: _sae_section(run_dir, states), problems)
    data["style"] = _guard("style", lambda: _style_section(run_dir, states), problems)
    data["samples"] = _guard("samples", lambda: _samples_section(run_dir, states, n), problems)
    try:
        data["findings"] = findings(data)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"findings: {type(exc).__name__}: {exc}")
        data["findings"] = []
    data["problems"] = problems
    return data


# ---------------------------------------------------------------------------
# Render


def _template_env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["f"] = _f
    env.filters["pct"] = _pct
    env.filters["ak"] = _alpha_key
    env.filters["secs"] = _secs
    return env


def _secs(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "–"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.2f} h"


def _embed(run_dir: Path, fig: Mapping[str, Any] | None) -> dict | None:
    if not fig:
        return None
    path = run_dir / fig["path"]
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(b"\x89PNG"):
        return None
    return {**fig, "uri": "data:image/png;base64," + base64.b64encode(raw).decode("ascii")}


def _collect_figures(data: Mapping[str, Any]) -> list[dict]:
    found: list[dict] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if set(x) >= {"path", "caption", "bytes"}:
                found.append(x)
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk({k: v for k, v in data.items() if k != "config"})
    return found


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page (figures inlined, model text escaped)."""
    run_dir = Path(data["run_dir"])
    figures = {f["path"]: _embed(run_dir, f) for f in _collect_figures(data)}
    template = _template_env().get_template("report.html.j2")
    return template.render(d=data, figs=figures, script=_SCRIPT, csp=CSP,
                           section_ids=SECTION_IDS, groups=GROUP_ORDER,
                           config_json=json.dumps(data.get("config") or {}, indent=2,
                                                  ensure_ascii=False))


def _md_text(x: Any) -> str:
    """Text for a Markdown table cell: HTML-escaped, one line, pipes escaped."""
    s = html.escape(" ".join(str(x).split()), quote=False)
    return s.replace("|", "\\|")


def render_markdown(data: ReportData) -> str:
    """A short Markdown summary for a terminal or a pull request."""
    s = data.get("summary") or {}
    L: list[str] = [f"# {_md_text(data.get('title'))}", ""]
    L.append(f"Model `{s.get('model')}` · layer {s.get('layer')} · position {s.get('position')} · "
             f"judge {s.get('steering_judge') or s.get('labels_judge')} · data "
             f"`{s.get('data')}` ({s.get('n_splits')} splits, {s.get('n_split_prompts')} + "
             f"{s.get('n_benign_prompts')} benign prompts) · total {_secs(s.get('total_seconds'))}")
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
        L.append(f"Cosine {_f(gs.get('min_offdiag_cosine'))} … {_f(gs.get('max_offdiag_cosine'))} "
                 f"(mean {_f(gs.get('mean_offdiag_cosine'))}); best k {geo.get('best_k')} "
                 f"(silhouette {_f(gs.get('best_silhouette'))}). Source: `geometry/geometry.json`.")
        for k, cl in (geo.get("clusters_by_k") or {}).items():
            if k in ("2", str(geo.get("best_k"))):
                L.append(f"- k = {k}: " + " | ".join(", ".join(c) for c in cl))
    else:
        L.append(f"_{_md_text(geo.get('reason'))}_")
    st = data.get("steering") or {}
    L += ["", "## Steering (RR / ORR)", ""]
    if st.get("available"):
        tab = st.get("table") or {}
        keys = tab.get("alpha_keys") or []
        L.append("| direction | " + " | ".join(f"α={k}" for k in keys) + " |")
        L.append("|---|" + "---|" * len(keys))
        for r in tab.get("rows") or []:
            L.append(f"| {_md_text(r['label'])} | " + " | ".join(
                f"{_f((r['cells'].get(k) or {}).get('rr'))} / {_f((r['cells'].get(k) or {}).get('orr'))}"
                if k in r["cells"] else "" for k in keys) + " |")
        g = st.get("gap") or {}
        if g.get("value") is not None:
            ci = g.get("ci95")
            L.append("")
            L.append(f"Trade-off gap {_f(g['value'], 3)} ({' vs '.join(g.get('pair') or [])})"
                     + (f", 95% CI {_f(ci[0], 3)}–{_f(ci[1], 3)}" if ci else "")
                     + (f", permutation p = {_f(g['p_value'], 3)}" if g.get("p_value") is not None
                        else "") + ". Source: `steering/metrics.json`.")
    else:
        L.append(f"_{_md_text(st.get('reason'))}_")
    ab = data.get("ablation") or {}
    L += ["", "## Ablation", ""]
    if ab.get("available"):
        b = ab.get("baseline") or {}
        L.append(f"Baseline RR {_f(b.get('rr'))}, ORR {_f(b.get('orr'))}. Source: "
                 "`ablation/metrics.json`.")
        L += ["", "| direction | RR | ORR | ΔRR | ΔORR |", "|---|---|---|---|---|"]
        for r in ab.get("rows") or []:
            L.append(f"| {_md_text(r.get('direction'))} | {_f(r.get('rr'))} | {_f(r.get('orr'))} | "
                     f"{_f(r.get('d_rr'))} | {_f(r.get('d_orr'))} |")
    else:
        L.append(f"_{_md_text(ab.get('reason'))}_")
    sae = data.get("sae") or {}
    L += ["", "## SAE latents", ""]
    if sae.get("available"):
        L.append(f"Top-{sae.get('core_k')}: core {sae.get('core_size')}, tail "
                 f"{sae.get('tail_size')}, shared {sae.get('shared_size')}, distinct "
                 f"{sae.get('distinct')} (core = in ≥ {sae.get('core_min_splits')} splits). "
                 "Source: `sae_analysis/analysis.json`.")
        core = [str(r["latent"]) for r in sae.get("core") or []]
        if core:
            L.append(f"Core latents: {', '.join(core[:30])}")
        comp = ((sae.get("steering") or {}).get("comparison") or {})
        for gp in comp.get("gaps") or []:
            L.append(f"- {_md_text(gp['label'])}: max gap to a direction "
                     f"{_f(gp.get('max_over_directions'), 3)} (`sae_steering/comparison.json`)")
    else:
        L.append(f"_{_md_text(sae.get('reason'))}_")
    sty = data.get("style") or {}
    L += ["", "## Refusal style", ""]
    if sty.get("available"):
        L += [f"Classifier: {sty.get('classifier')}. Source: `style/summary.json`.", "",
              "| direction | refusals | dominant | purity |", "|---|---|---|---|"]
        for r in ([sty["baseline"]] if sty.get("baseline") else []) + (sty.get("rows") or []):
            L.append(f"| {_md_text(r['name'])} | {r.get('n_refusals')} | {r.get('dominant') or '–'} | "
                     f"{_pct(r.get('purity'))} |")
    else:
        L.append(f"_{_md_text(sty.get('reason'))}_")
    if s.get("timings"):
        L += ["", "## Timings", "", "| stage | seconds |", "|---|---|"]
        for t in s["timings"]:
            L.append(f"| {t['stage']} | {_f(t['seconds'], 1)} |")
    if data.get("problems"):
        L += ["", "## Problems reading artifacts", ""]
        L += [f"- {_md_text(p)}" for p in data["problems"]]
    return "\n".join(L) + "\n"


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                 data: ReportData | None = None) -> tuple[Path, Path]:
    """Build and write ``report.html`` and ``report.md`` (atomically) into ``out_dir``
    (default: the run folder); returns their paths."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    data = data if data is not None else build_report(run_dir)
    html_path, md_path = out / REPORT_HTML, out / REPORT_MD
    page = render_html(data)
    md = render_markdown(data)
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(md_path) as tmp:
        tmp.write_text(md, encoding="utf-8")
    return html_path, md_path


# ---------------------------------------------------------------------------
# Pipeline stage


def run_report_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from .progress import console

    data = build_report(ctx.run.root)
    html_path, md_path = write_report(ctx.run.root, data=data)
    write_json(out_dir / "findings.json", {"findings": data["findings"],
                                           "problems": data["problems"]})
    for fd in data["findings"]:
        console.print(f"{fd['title']}: {fd['status']}")
    return {"html": _rel(ctx.run.root, html_path), "md": _rel(ctx.run.root, md_path),
            "bytes": html_path.stat().st_size,
            "findings": {fd["id"]: fd["status"] for fd in data["findings"]},
            "problems": data["problems"]}


_IN_FACTORY = False


def _stages():
    from .pipeline import Stage, settings_of, stages

    global _IN_FACTORY
    if _IN_FACTORY:  # stages() below calls every factory, this one included
        return []
    _IN_FACTORY = True
    try:
        registered = set(stages())
    finally:
        _IN_FACTORY = False
    deps = tuple(d for d in REPORT_DEPS if d in registered)
    return [Stage(STAGE, deps, lambda c: settings_of(c.report), run_report_stage,
                  "report.html (figures embedded) and report.md", needs_model=False)]


def _register() -> None:
    from .pipeline import register_stages

    register_stages(_stages)


_register()

__all__ = [
    "CSP",
    "REPORT_HTML",
    "REPORT_MD",
    "SECTION_IDS",
    "ReportData",
    "build_report",
    "findings",
    "render_html",
    "render_markdown",
    "stage_states",
    "write_report",
]
