"""Pipeline stages for the SAE analysis: ``sae`` -> ``sae_analysis`` -> ``sae_steering``.

* ``sae``: train an SAE on this model (``sae.source: train``) or load a published one (any
  spec :func:`~refusal_atlas.sae.loaders.load_sae` reads). A trained SAE is saved in the
  SAELens format under ``sae/saelens/``; ``sae/sae.json`` says where the SAE is, which
  layer it reads and how well it reconstructs (overall, held-out, and at the analysis
  position). Layer: a trained SAE reads ``resid_pre`` of ``sae.layer`` (default: the
  direction layer, so SAE and direction steering act at the same place); a published SAE
  reads its own hook layer (``sae.layer``, when set, must agree: ``check_compatible``).
* ``sae_analysis``: SAE latents at the analysis position of every labelled prompt; per
  split scores, top-K, popularity, intersections, shared core and long tail, and the
  top-activating prompts of the top latents (:mod:`refusal_atlas.sae.analysis`).
* ``sae_steering``: add ``alpha * (sum of decoder rows)`` of latent sets (the shared
  core, each chosen split's top-10, optionally their tails or a user list) at the SAE's
  hook layer, every position, through the same sweep engine, prompts, judge and metrics as
  the ``steering`` stage; the cosine of each split's latent vector with its direction; and
  a side-by-side table with direction steering (``comparison.json`` / ``.md``) whenever the
  steering stage has finished.

See ``docs/sae.md``.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..artifacts import read_json, read_jsonl, write_json, write_tensors
from ..errors import UserError
from ..progress import console

STAGE_SAE = "sae"
STAGE_ANALYSIS = "sae_analysis"
STAGE_STEERING = "sae_steering"
SAELENS_SUBDIR = "saelens"
SAE_JSON = "sae.json"
ANALYSIS_JSON = "analysis.json"
COMPARISON_JSON = "comparison.json"
STEER_SETS = ("core", "split_topk", "tail", "user")
CORE_NAME = "sae_core"
USER_NAME = "sae_user"


# --------------------------------------------------------------------------- helpers
def _file_sha(path: str) -> str | None:
    p = Path(path).expanduser()
    if p.is_file():
        return hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return None


def _source_fingerprint(source: str) -> Any:
    """A local SAE file or folder is fingerprinted by its files' sizes and mtimes."""
    p = Path(source).expanduser()
    if p.is_file():
        st = p.stat()
        return {"source": source, "size": st.st_size, "mtime": int(st.st_mtime)}
    if p.is_dir():
        files = sorted(x for x in p.iterdir() if x.is_file())
        return {"source": source,
                "files": [[x.name, x.stat().st_size, int(x.stat().st_mtime)] for x in files]}
    return {"source": source}


def _model_settings(cfg) -> dict:
    from ..pipeline import _model_settings as settings

    return settings(cfg)


def sae_settings(cfg) -> dict:
    s = cfg.sae
    out: dict[str, Any] = {"model": _model_settings(cfg), "position": cfg.activations.position,
                           "layer": s.layer}
    if s.source == "train":
        out.update({
            "source": "train", "architecture": s.architecture, "expansion": s.expansion,
            "k": s.k, "train_steps": s.train_steps, "train_batch_size": s.train_batch_size,
            "train_max_tokens": s.train_max_tokens, "seed": s.seed,
            "corpus_files": [[f, _file_sha(f)] for f in s.corpus_files],
            "corpus_oversample": s.corpus_oversample, "corpus_holdout": s.corpus_holdout,
            "corpus_responses": s.corpus_responses,
        })
    else:
        out["source"] = _source_fingerprint(s.source)
    return out


def analysis_settings(cfg) -> dict:
    s = cfg.sae
    return {"position": cfg.activations.position, "top_k": sorted(set(s.top_k)),
            "core_min_splits": s.core_min_splits, "core_k": s.core_k,
            "examples_k": s.examples_k, "examples_n": s.examples_n}


def steering_settings(cfg) -> dict:
    s, st = cfg.sae, cfg.steering
    prompts = {"prompts": st.prompts}
    if st.prompts != "test_set":
        prompts["sha256"] = _file_sha(st.prompts)
    return {"steer_alphas": s.steer_alphas, "steer_auto_alphas": s.steer_auto_alphas,
            "steer_normalize": s.steer_normalize, "steer_sets": s.steer_sets,
            "steer_topk": s.steer_topk, "steer_splits": s.steer_splits,
            "steer_max_splits": s.steer_max_splits, "steer_latents": s.steer_latents,
            "auto_reference_gap": st.auto_reference_gap, "directions": st.directions,
            "max_new_tokens": st.max_new_tokens, "judge": st.judge,
            "judge_options": st.judge_options, **prompts}


def _device(ctx) -> str:
    device = str(ctx.config.model.device)
    return device if device.startswith("cuda") and torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- the SAE stage
def _corpus_prompts(ctx) -> list:
    from .corpus import CorpusPrompt

    responses = {r["prompt_id"]: r.get("response")
                 for r in read_jsonl(ctx.stage_dir("labels") / "responses.jsonl")}
    return [CorpusPrompt(p.id, p.text, responses.get(p.id)) for p in ctx.suite.all_prompts()]


def _metric_view(m: Mapping[str, float] | None) -> dict | None:
    if not m:
        return None
    return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in m.items()}


def run_sae_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.sae
    if cfg.source == "train":
        return _train_stage(ctx, out_dir)
    return _load_stage(ctx, out_dir)


def _train_stage(ctx, out_dir: Path) -> dict:
    from .corpus import CorpusConfig, collect_corpus
    from .loaders import save_saelens_dir
    from .train import SAETrainConfig, evaluate_sae, train_sae

    cfg = ctx.config.sae
    lm = ctx.lm
    layer = cfg.layer if cfg.layer is not None else ctx.layer
    if not 0 <= layer < lm.n_layers:
        raise UserError(f"sae.layer {layer} is out of range: the model has layers "
                        f"0..{lm.n_layers - 1}")
    position = ctx.config.activations.position
    corpus = collect_corpus(
        lm, ctx.formatter, _corpus_prompts(ctx),
        CorpusConfig(layer=layer, position=position, max_rows=cfg.train_max_tokens,
                     oversample=cfg.corpus_oversample, holdout=cfg.corpus_holdout,
                     include_responses=cfg.corpus_responses, files=list(cfg.corpus_files),
                     chunk_tokens=ctx.config.activations.max_prompt_tokens, seed=cfg.seed,
                     batch_size=ctx.config.activations.batch_size),
        cache=ctx.activation_cache)
    console.print(f"SAE corpus: {corpus.stats['n_rows']} rows "
                  f"({', '.join(f'{k} {v}' for k, v in corpus.stats['rows_by_source'].items())}) "
                  f"in {corpus.stats['seconds']:.0f}s")
    tcfg = SAETrainConfig(architecture=cfg.architecture, expansion=cfg.expansion, k=cfg.k,
                          batch_size=min(cfg.train_batch_size, corpus.train.shape[0]),
                          steps=cfg.train_steps, seed=cfg.seed, device=_device(ctx))
    sae, report = train_sae(corpus.train, tcfg, hook_layer=layer, model_name=lm.name,
                            eval_activations=corpus.eval_all)
    metrics = {
        "train": _metric_view(report.train_metrics),
        "heldout": _metric_view(report.eval_metrics),
        "heldout_without_outliers": _metric_view(report.eval_metrics_without_outliers),
        "position_heldout": _metric_view(evaluate_sae(sae, corpus.eval_position))
        if corpus.eval_position is not None and corpus.eval_position.shape[0] > 1 else None,
        "position_all": _metric_view(evaluate_sae(sae, corpus.position_rows))
        if corpus.position_rows.shape[0] > 1 else None,
    }
    folder = save_saelens_dir(sae, out_dir / SAELENS_SUBDIR)
    write_json(out_dir / "train_report.json", {"report": report.to_dict(), "corpus": corpus.stats,
                                               "metrics": metrics})
    _plot_training(report.history, out_dir / "training.png")
    meta = {
        "source": "train", "spec": str(folder.relative_to(out_dir)), "hook_layer": layer,
        "position": position, "d_in": sae.d_in, "d_sae": sae.d_sae,
        "architecture": sae.architecture, "k": sae.k,
        "neuronpedia_id": sae.info.neuronpedia_id, "model_name": lm.name,
        "metrics": metrics, "corpus": corpus.stats,
        "train": {"steps": report.steps, "batch_size": report.batch_size, "lr": report.lr,
                  "seconds": round(report.seconds, 1),
                  "seconds_per_1k_steps": round(report.seconds_per_1k_steps, 1),
                  "n_train_rows": report.n_train,
                  "n_excluded_outliers": report.n_excluded_outliers},
    }
    write_json(out_dir / SAE_JSON, meta)
    console.print(_describe_metrics(meta))
    return _sae_summary(meta)


def _load_stage(ctx, out_dir: Path) -> dict:
    from ..activations import extract_activations
    from ..labels import load_label_records
    from .loaders import load_sae
    from .models import check_compatible
    from .train import evaluate_sae

    cfg = ctx.config.sae
    lm = ctx.lm
    sae = load_sae(cfg.source)
    if sae.hook_layer is None:
        check_compatible(sae, d_model=lm.d_model, layer=0, n_layers=lm.n_layers)  # raises
    layer = cfg.layer if cfg.layer is not None else int(sae.hook_layer)
    check_compatible(sae, d_model=lm.d_model, layer=layer, n_layers=lm.n_layers)
    position = ctx.config.activations.position
    labelled = {r.prompt_id for r in load_label_records(ctx.stage_dir("labels"))
                if r.label is not None}
    prompts = [p for p in ctx.suite.all_prompts() if p.id in labelled]
    metrics: dict[str, Any] = {}
    if len(prompts) > 1:
        acts = extract_activations(lm, ctx.formatter, [p.text for p in prompts], [layer],
                                   [position], batch_size=ctx.config.activations.batch_size,
                                   cache=ctx.activation_cache,
                                   description=f"SAE check: L{layer} position {position}")
        metrics["position_all"] = _metric_view(evaluate_sae(sae, acts[:, 0, 0]))
    note = None
    if layer != ctx.layer:
        note = (f"the SAE reads resid_pre of layer {layer}; the directions are at layer "
                f"{ctx.layer}: SAE steering acts one or more layers away from direction steering")
        console.print(f"[yellow]note:[/yellow] {note}")
    meta = {
        "source": "published", "spec": str(cfg.source), "hook_layer": layer,
        "position": position, "d_in": sae.d_in, "d_sae": sae.d_sae,
        "architecture": sae.architecture, "k": sae.k,
        "neuronpedia_id": sae.info.neuronpedia_id, "model_name": sae.info.model_name,
        "source_format": sae.info.source_format, "hook_description": sae.info.hook_description(),
        "metrics": metrics, "direction_layer": ctx.layer, "note": note,
    }
    write_json(out_dir / SAE_JSON, meta)
    console.print(_describe_metrics(meta))
    return _sae_summary(meta)


def _sae_summary(meta: Mapping[str, Any]) -> dict:
    m = meta.get("metrics") or {}
    out = {"source": meta["source"], "hook_layer": meta["hook_layer"], "d_sae": meta["d_sae"],
           "architecture": meta["architecture"]}
    for key in ("train", "heldout_without_outliers", "position_heldout", "position_all"):
        if m.get(key):
            out[key] = {k: m[key][k] for k in ("fve", "l0", "dead_fraction") if k in m[key]}
    if "train" in meta:
        out["train_seconds"] = meta["train"]["seconds"]
    return out


def _describe_metrics(meta: Mapping[str, Any]) -> str:
    m = meta.get("metrics") or {}
    names = {"train": "training rows", "heldout_without_outliers": "held-out (all positions)",
             "position_heldout": f"held-out, position {meta['position']}",
             "position_all": f"all prompts, position {meta['position']}"}
    parts = [f"{label}: FVE {m[key]['fve']:.3f}, L0 {m[key]['l0']:.1f}"
             for key, label in names.items() if m.get(key)]
    dead = (m.get("train") or {}).get("dead_fraction")
    head = f"SAE ({meta['architecture']}, {meta['d_sae']} latents, resid_pre L{meta['hook_layer']})"
    tail = f"; dead latents {dead:.1%}" if dead is not None else ""
    return head + ": " + "; ".join(parts) + tail


def _plot_training(history: Sequence[Mapping[str, float]], path: Path) -> None:
    if not history:
        return
    from ..figures import new_figure, save_png

    fig = new_figure((6.0, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h.get("fve", math.nan) for h in history], label="FVE (batch)")
    ax.plot(steps, [h.get("dead_fraction", math.nan) for h in history], label="dead share")
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("SAE training")
    save_png(fig, path)


def load_stage_sae(run_dir: str | Path, *, device: str = "cpu"):
    """``(SAE, sae.json)`` of a run folder's finished ``sae`` stage."""
    from .loaders import load_sae, load_saelens_dir

    folder = Path(run_dir) / STAGE_SAE
    if not (folder / SAE_JSON).exists():
        raise UserError(f"{run_dir} has no SAE: run `refusal-atlas sae train --out {run_dir}` "
                        "first")
    meta = read_json(folder / SAE_JSON)
    if meta["source"] == "train":
        sae = load_saelens_dir(folder / meta["spec"], device=device)
    else:
        sae = load_sae(meta["spec"], device=device)
    if sae.hook_layer != meta["hook_layer"]:
        sae.info.hook_layer = int(meta["hook_layer"])
    return sae, meta


# --------------------------------------------------------------------------- analysis
@torch.no_grad()
def encode_rows(sae, acts: torch.Tensor, *, chunk: int = 1024) -> torch.Tensor:
    """SAE latents (float32, CPU) for ``acts`` [N, d_in], in chunks."""
    out = [sae.encode(acts[i:i + chunk]).float().cpu() for i in range(0, acts.shape[0], chunk)]
    return torch.cat(out) if out else torch.empty(0, sae.d_sae)


def _analysis_activations(ctx, layer: int, position: int) -> tuple[list[str], torch.Tensor]:
    """Activations of every labelled prompt at (layer, position): the activations stage's
    table when it matches, else extracted (cached)."""
    from ..activations import extract_activations, load_activation_table
    from ..labels import load_label_records

    table = ctx.stage_dir("activations") / "acts.safetensors"
    if table.exists():
        ids, acts, meta = load_activation_table(table)
        if int(meta.get("layer", -1)) == layer and int(meta.get("position", 0)) == position:
            return ids, acts
    labelled = {r.prompt_id for r in load_label_records(ctx.stage_dir("labels"))
                if r.label is not None}
    prompts = [p for p in ctx.suite.all_prompts() if p.id in labelled]
    acts = extract_activations(ctx.lm, ctx.formatter, [p.text for p in prompts], [layer],
                               [position], batch_size=ctx.config.activations.batch_size,
                               cache=ctx.activation_cache,
                               description=f"SAE analysis: L{layer} position {position}")
    return [p.id for p in prompts], acts[:, 0, 0]


def run_sae_analysis_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from ..labels import load_label_records, load_training_pools
    from .analysis import (
        PromptInfo,
        analyze_latents,
        latents_markdown,
        plot_core_scores,
        plot_overlap,
        plot_popularity,
    )

    cfg = ctx.config.sae
    sae, meta = load_stage_sae(ctx.run.root)
    layer, position = int(meta["hook_layer"]), ctx.config.activations.position
    ids, acts = _analysis_activations(ctx, layer, position)
    latents = encode_rows(sae, acts)
    by_id = ctx.suite.by_id()
    label_of = {r.prompt_id: r.label for r in load_label_records(ctx.stage_dir("labels"))}
    prompts = [PromptInfo(pid, by_id[pid].split, label_of.get(pid), by_id[pid].text)
               for pid in ids]
    row = {pid: i for i, pid in enumerate(ids)}
    pools = load_training_pools(ctx.stage_dir("pools"))
    split_rows = {}
    skipped = []
    for split in pools.splits:
        hr = [row[p.id] for p in ctx.suite.splits[split]
              if label_of.get(p.id) == "HR" and p.id in row]
        bc = [row[p.id] for p in ctx.suite.benign[ctx.suite.benign_for[split]]
              if label_of.get(p.id) == "BC" and p.id in row]
        if hr and bc:
            split_rows[split] = (hr, bc)
        else:
            skipped.append(split)
    result = analyze_latents(
        latents, prompts, split_rows, ks=cfg.top_k, core_min_splits=cfg.core_min_splits,
        core_k=cfg.core_k, examples_k=cfg.examples_k, examples_n=cfg.examples_n,
        neuronpedia_url=sae.neuronpedia_url if sae.info.neuronpedia_id else None)
    result.sae = {k: meta.get(k) for k in ("source", "spec", "hook_layer", "d_sae",
                                           "architecture", "k", "neuronpedia_id")}
    result.params.update({"position": position, "layer": layer, "skipped_splits": skipped})
    write_json(out_dir / ANALYSIS_JSON, result.to_dict())
    (out_dir / "latents.md").write_text(latents_markdown(result), encoding="utf-8")
    names = list(split_rows)
    tensors = {}
    for name, (hr, bc) in split_rows.items():
        hr_frac = (latents[hr] > 0).float().mean(0)
        bc_frac = (latents[bc] > 0).float().mean(0)
        tensors[f"hr_frac/{name}"] = hr_frac
        tensors[f"bc_frac/{name}"] = bc_frac
    write_tensors(out_dir / "firing.safetensors", tensors,
                  metadata={"splits": ",".join(names), "layer": str(layer),
                            "position": str(position)})
    plot_popularity(result, out_dir / "popularity.png")
    for k in result.ks:
        plot_overlap(result, k, out_dir / f"overlap_top{k}.png")
    plot_core_scores(result, out_dir / "core_scores.png")
    summary = result.summary()
    summary["skipped_splits"] = skipped
    console.print(describe_analysis(result))
    return summary


def load_analysis(run_dir: str | Path):
    from .analysis import LatentAnalysis

    path = Path(run_dir) / STAGE_ANALYSIS / ANALYSIS_JSON
    if not path.exists():
        raise UserError(f"{run_dir} has no SAE analysis: run `refusal-atlas sae analyze --out "
                        f"{run_dir}` first")
    return LatentAnalysis.from_dict(read_json(path))


def describe_analysis(result, *, n_core: int = 5, n_examples: int = 2) -> str:
    k = result.core_k
    s = result.summary()
    lines = [f"top-{k} latents of {len(result.splits)} splits: "
             f"{s['distinct_top_latents'][str(k)]} distinct; shared core (>= "
             f"{result.core_min_splits} splits) {s['core_size'][str(k)]}, long tail (one split) "
             f"{s['tail_size'][str(k)]}"]
    for kk in result.ks:
        if kk != k:
            lines.append(f"  top-{kk}: core {s['core_size'][str(kk)]}, tail "
                         f"{s['tail_size'][str(kk)]}")
    for j in result.core[k][:n_core]:
        pops = result.popularity[k][j]
        ex = "; ".join(f"[{e['label']} {e['split']}] {e['text'][:70]}"
                       for e in result.examples.get(j, [])[:n_examples])
        lines.append(f"  core latent {j} ({len(pops)} splits): {ex}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- steering
def latent_name(kind: str, split: str | None = None, k: int | None = None) -> str:
    """Bank / condition names: ``sae_core``, ``sae_user``, ``sae_top10:SPLIT``, ``sae_tail:SPLIT``
    (condition names cannot hold '/')."""
    if kind == "core":
        return CORE_NAME
    if kind == "user":
        return USER_NAME
    if kind == "split_topk":
        return f"sae_top{k}:{split}"
    if kind == "tail":
        return f"sae_tail:{split}"
    raise UserError(f"unknown SAE steering set {kind!r}; sets: {', '.join(STEER_SETS)}")


def choose_steer_splits(splits: Sequence[str], clusters: Sequence[Sequence[str]] | None,
                        cosine: Mapping[tuple[str, str], float] | None, n: int | None
                        ) -> list[str]:
    """``n`` splits spanning the clusters: round-robin over clusters (largest first), each
    cluster's most central member (highest mean cosine to its cluster mates) first.
    Without clusters: the first ``n`` splits; ``n=None``: all of them."""
    splits = list(splits)
    if n is None or n >= len(splits):
        return splits
    groups = [[s for s in c if s in splits] for c in (clusters or [])]
    groups = [g for g in groups if g]
    if not groups:
        return splits[:n]

    def centrality(s: str, group: Sequence[str]) -> float:
        mates = [t for t in group if t != s]
        if not mates or not cosine:
            return 0.0
        return sum(cosine.get((s, t), 0.0) for t in mates) / len(mates)

    ordered = [sorted(g, key=lambda s: (-centrality(s, g), splits.index(s)))
               for g in sorted(groups, key=lambda g: (-len(g), splits.index(g[0])))]
    out: list[str] = []
    while len(out) < n and any(ordered):
        for g in ordered:
            if g and len(out) < n:
                out.append(g.pop(0))
    rest = [s for s in splits if s not in out]
    return out + rest[:n - len(out)]


def _geometry_clusters(ctx) -> tuple[list[list[str]] | None, dict | None]:
    from ..geometry import load_geometry

    folder = ctx.stage_dir("geometry")
    if not (folder / "geometry.json").exists():
        return None, None
    geometry = load_geometry(folder)
    clusters = geometry.clustering.clusters(k=2) if len(geometry.names) > 2 else []
    names = geometry.names
    cosine = {(a, b): float(geometry.cosine[i][j]) for i, a in enumerate(names)
              for j, b in enumerate(names)}
    return clusters, cosine


def build_sae_bank(sae, analysis, *, sets: Sequence[str], splits: Sequence[str], topk: int,
                   user_latents: Sequence[int] = (), normalize: bool, layer: int
                   ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """``({name: SteeringVector}, vector descriptions, warnings)`` for the chosen latent sets."""
    from ..sweeps import SteeringVector, latent_sum_vector

    unknown = [s for s in sets if s not in STEER_SETS]
    if unknown:
        raise UserError(f"unknown sae.steer_sets {unknown}; sets: {', '.join(STEER_SETS)}")
    missing = [s for s in splits if s not in analysis.splits]
    if missing:
        raise UserError(f"sae.steer_splits {missing} have no SAE analysis; analysed splits: "
                        f"{', '.join(analysis.splits)}")
    if "user" in sets and not user_latents:
        raise UserError("sae.steer_sets has 'user' but sae.steer_latents is empty")
    bad = [j for j in user_latents if not 0 <= int(j) < sae.d_sae]
    if bad:
        raise UserError(f"sae.steer_latents {bad} are out of range for an SAE with {sae.d_sae} "
                        "latents")
    wanted: list[tuple[str, str, str | None, list[int]]] = []
    warnings: list[str] = []
    if "core" in sets:
        core = analysis.core_latents()
        if core:
            wanted.append((CORE_NAME, "core", None, core))
        else:
            warnings.append(f"the shared core at top-{analysis.core_k} is empty; no sae_core "
                            "condition (lower sae.core_min_splits or raise sae.top_k)")
    if "split_topk" in sets:
        for split in splits:
            latents = analysis.top_latents(split, topk)
            if latents:
                wanted.append((latent_name("split_topk", split, topk), "split_topk", split,
                               latents))
            else:
                warnings.append(f"{split}: no latent with a positive score; no top-{topk} vector")
    if "tail" in sets:
        for split in splits:
            latents = analysis.tail_latents(split)
            if latents:
                wanted.append((latent_name("tail", split), "tail", split, latents))
            else:
                warnings.append(f"{split}: empty long tail at top-{analysis.core_k}")
    if user_latents:
        wanted.append((USER_NAME, "user", None, [int(j) for j in user_latents]))
    decoder = sae.W_dec.detach().float()
    bank: dict[str, Any] = {}
    described = []
    for name, kind, split, latents in wanted:
        raw = latent_sum_vector(decoder, latents, layer, source="sae")
        norm = raw.norm
        vector = raw.vector / norm if normalize and norm > 0 else raw.vector
        bank[name] = SteeringVector(vector, layer, source="sae",
                                    meta={"latents": latents, "raw_norm": norm,
                                          "normalized": bool(normalize)})
        described.append({"name": name, "set": kind, "split": split, "latents": latents,
                          "n_latents": len(latents), "raw_norm": norm,
                          "normalized": bool(normalize), "layer": layer})
    if not bank:
        raise UserError("no SAE steering vector to steer with: " + "; ".join(warnings))
    return bank, described, warnings


def vector_cosines(sae, analysis, directions: Mapping[str, Any], topk: int,
                   vectors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cosine of each split's top-k latent sum with that split's direction, the core's with
    every direction and with their mean; and of each bank vector with every direction."""
    decoder = sae.W_dec.detach().float()

    def cos(a: torch.Tensor, b: torch.Tensor) -> float | None:
        na, nb = float(a.norm()), float(b.norm())
        return None if na == 0 or nb == 0 else float(a @ b / (na * nb))

    per_split = {}
    for split in analysis.splits:
        if split not in directions:
            continue
        latents = analysis.top_latents(split, topk)
        if not latents:
            continue
        v = decoder[latents].sum(0)
        d = directions[split].vector.float()
        per_split[split] = {
            "cosine": cos(v, d),
            "n_latents": len(latents),
            "best_single_latent": max((cos(decoder[j], d) or 0.0, j) for j in latents)[1],
            "best_single_cosine": max(cos(decoder[j], d) or 0.0 for j in latents),
        }
    out: dict[str, Any] = {
        "definition": f"cosine(sum of W_dec rows of the split's top-{topk} latents, the split's "
                      "difference-in-means direction)",
        "sae_layer": int(sae.hook_layer) if sae.hook_layer is not None else None,
        "direction_layers": sorted({int(d.layer) for d in directions.values()}),
        "top_k": topk, "per_split": per_split,
    }
    if directions:
        mean_dir = torch.stack([d.vector.float() for d in directions.values()]).mean(0)
        core = analysis.core_latents()
        if core:
            v = decoder[core].sum(0)
            out["core"] = {"n_latents": len(core), "with_mean_direction": cos(v, mean_dir),
                           "per_direction": {n: cos(v, d.vector.float())
                                             for n, d in directions.items()}}
    if vectors:
        out["bank"] = {name: {n: cos(sv.vector, d.vector.float()) for n, d in directions.items()}
                       for name, sv in vectors.items()}
    return out


def run_sae_steering_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from .. import metrics as M
    from ..directions import load_directions
    from ..sweeps import (
        get_executor,
        resolve_alphas,
        run_sweep,
        select_directions,
        steering_grid,
        sweep_prompts,
    )

    cfg, st = ctx.config.sae, ctx.config.steering
    sae, meta = load_stage_sae(ctx.run.root)
    analysis = load_analysis(ctx.run.root)
    all_directions = load_directions(ctx.stage_dir("directions"))
    directions = select_directions(all_directions, st.directions)
    layer = int(meta["hook_layer"])

    if cfg.steer_splits is not None:
        splits = list(dict.fromkeys(cfg.steer_splits))
        how = "sae.steer_splits"
    else:
        clusters, cosine = _geometry_clusters(ctx)
        splits = choose_steer_splits(analysis.splits, clusters, cosine, cfg.steer_max_splits)
        how = ("spanning the geometry's two clusters" if clusters else "the first splits") \
            if cfg.steer_max_splits is not None and cfg.steer_max_splits < len(analysis.splits) \
            else "all splits"
    sets = list(dict.fromkeys(cfg.steer_sets))
    alphas, alpha_info = resolve_alphas(cfg.steer_alphas, directions,
                                        reference_gap=st.auto_reference_gap,
                                        auto_alphas=cfg.steer_auto_alphas)
    normalize = cfg.steer_normalize if cfg.steer_normalize is not None else \
        cfg.steer_alphas == "auto"
    alpha_info["vector_norm"] = "unit" if normalize else "raw sum of decoder rows"
    bank, described, warnings = build_sae_bank(
        sae, analysis, sets=sets, splits=splits, topk=cfg.steer_topk,
        user_latents=cfg.steer_latents, normalize=normalize, layer=layer)
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    for d in described:
        d["method_alphas"] = {str(a): (a / d["raw_norm"] if normalize and d["raw_norm"] else a)
                              for a in alphas}
    cosines = vector_cosines(sae, analysis, all_directions, cfg.steer_topk, bank)
    write_json(out_dir / "vectors.json", {"splits": splits, "splits_chosen_by": how,
                                          "sets": sets, "vectors": described,
                                          "warnings": warnings,
                                          "method_alphas_definition":
                                              "alpha on METHOD's raw latent sum that adds the "
                                              "same vector (alpha / raw_norm when normalised)"})
    write_json(out_dir / "cosines.json", cosines)

    prompts = sweep_prompts(ctx)
    judge = ctx.judge(st.judge, st.judge_options)
    conditions = steering_grid(list(bank), alphas, kind="vector")
    write_json(out_dir / "conditions.json",
               {"conditions": [c.to_dict() for c in conditions], "alphas": alpha_info,
                "vectors": list(bank), "n_prompts": len(prompts), "prompts": st.prompts,
                "max_new_tokens": st.max_new_tokens, "judge": judge.name, "layer": layer})
    result = run_sweep(ctx.lm, ctx.formatter, prompts, conditions, bank, out_dir,
                       max_new_tokens=st.max_new_tokens, batch_size=st.batch_size, judge=judge,
                       executor=get_executor(st.executor), description="SAE steering")
    summary = M.summarise(result.rows, judge=judge.name,
                          approximate=bool(getattr(judge, "approximate", False)),
                          alphas=alpha_info)
    summary["sweep"] = result.stats
    write_json(out_dir / "metrics.json", summary)
    M.plot_dose_response(summary["dose_response"], out_dir / "dose_response.png",
                         judge=judge.name)
    M.plot_tradeoff(summary["dose_response"], out_dir / "tradeoff.png",
                    gap=summary["tradeoff_gap"], judge=judge.name)
    comparison = write_comparison(ctx.run.root)
    compact = M.compact_summary(summary)
    compact["vectors"] = {d["name"]: d["n_latents"] for d in described}
    compact["cosine_topk_vs_direction"] = {s: v["cosine"] for s, v in cosines["per_split"].items()}
    if comparison is not None:
        console.print(comparison_markdown(comparison, compact=True))
    return compact


# --------------------------------------------------------------------------- comparison
def _rates_by_curve(metrics: Mapping[str, Any]) -> dict[str, dict[float, dict]]:
    out: dict[str, dict[float, dict]] = {}
    for r in metrics.get("dose_response", []) or []:
        out.setdefault(r["label"], {})[float(r["alpha"])] = {"rr": r["rr"], "orr": r["orr"]}
    return out


def _mean(xs: Sequence[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def compare_with_directions(sae_metrics: Mapping[str, Any], steering_metrics: Mapping[str, Any],
                            vectors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Side by side: RR / ORR of every SAE curve and of direction steering at each alpha, and
    trade-off gaps (max |ORR difference| at matched RR) between SAE and direction curves."""
    from .. import metrics as M

    sae_curves = _rates_by_curve(sae_metrics)
    dir_curves = {label: v for label, v in _rates_by_curve(steering_metrics).items()
                  if not label.startswith("vector/")}
    alphas = sorted({a for c in (*sae_curves.values(), *dir_curves.values()) for a in c})
    split_of = {f"vector/{v['name']}": v.get("split") for v in vectors}
    rows = []
    for a in alphas:
        row: dict[str, Any] = {"alpha": a}
        ds = [c[a] for c in dir_curves.values() if a in c]
        row["directions_mean"] = ({"rr": _mean([d["rr"] for d in ds]),
                                   "orr": _mean([d["orr"] for d in ds]), "n": len(ds)}
                                  if ds else None)
        for label, c in sae_curves.items():
            row[label] = c.get(a)
            split = split_of.get(label)
            if split and split in dir_curves:
                row[f"direction/{split}"] = dir_curves[split].get(a)
        rows.append(row)

    def points(c: Mapping[float, dict]) -> list[tuple[float, float]]:
        return [(v["rr"], v["orr"]) for _, v in sorted(c.items())
                if v["rr"] is not None and v["orr"] is not None]

    gaps = {}
    for label, c in sae_curves.items():
        p = points(c)
        if not p:
            continue
        per = {}
        for dname, dc in dir_curves.items():
            q = points(dc)
            if q:
                per[dname] = M.pair_gap(p, q)["gap"]
        valid = [g for g in per.values() if g is not None]
        split = split_of.get(label)
        gaps[label] = {"own_direction": per.get(split) if split else None,
                       "max_over_directions": max(valid) if valid else None,
                       "mean_over_directions": _mean(valid), "per_direction": per}
    dir_gap = (steering_metrics.get("tradeoff_gap") or {})
    return {
        "definition": "RR / ORR at each alpha (SAE curves: alpha on the latent-sum vector as "
                      "steered; see vectors.json for normalisation); gaps: max |ORR difference| "
                      "at matched RR between an SAE curve and direction curves (metrics.pair_gap)",
        "alphas": alphas, "rows": rows, "gaps": gaps,
        "sae_alpha_mode": (sae_metrics.get("alphas") or {}).get("vector_norm"),
        "directions_tradeoff_gap": {k: dir_gap.get(k)
                                    for k in ("value", "pair", "mean_over_pairs")},
        "judge": sae_metrics.get("judge"), "steering_judge": steering_metrics.get("judge"),
        "same_judge": sae_metrics.get("judge") == steering_metrics.get("judge"),
    }


def write_comparison(run_dir: str | Path) -> dict[str, Any] | None:
    """(Re)write ``sae_steering/comparison.json``, ``.md`` and ``tradeoff_vs_directions.png``
    from the two stages' metrics; None (and nothing written) until both exist."""
    run_dir = Path(run_dir)
    sae_dir = run_dir / STAGE_STEERING
    steer_metrics = run_dir / "steering" / "metrics.json"
    if not (sae_dir / "metrics.json").exists() or not steer_metrics.exists() or \
            not (run_dir / "steering" / "_done.json").exists():
        return None
    sae_m = read_json(sae_dir / "metrics.json")
    dir_m = read_json(steer_metrics)
    vectors_file = sae_dir / "vectors.json"
    vectors = read_json(vectors_file)["vectors"] if vectors_file.exists() else []
    comparison = compare_with_directions(sae_m, dir_m, vectors)
    write_json(sae_dir / COMPARISON_JSON, comparison)
    (sae_dir / "comparison.md").write_text(comparison_markdown(comparison), encoding="utf-8")
    plot_tradeoff_vs_directions(sae_m, dir_m, sae_dir / "tradeoff_vs_directions.png")
    return comparison


def _cell(v: Mapping[str, Any] | None) -> str:
    if not v:
        return ""
    rr = "-" if v.get("rr") is None else f"{v['rr']:.2f}"
    orr = "-" if v.get("orr") is None else f"{v['orr']:.2f}"
    return f"{rr} / {orr}"


def comparison_markdown(comparison: Mapping[str, Any], *, compact: bool = False) -> str:
    rows = comparison["rows"]
    cols: list[str] = ["directions_mean"]
    for r in rows:
        for key in r:
            if key not in ("alpha", "directions_mean") and key not in cols:
                cols.append(key)
    # SAE curve first, then its split's direction
    ordered = ["directions_mean"] + [c for c in cols if c.startswith("vector/")]
    for c in list(ordered):
        if c.startswith("vector/"):
            name = c.split("/", 1)[1]
            split = name.split(":", 1)[1] if ":" in name else None
            if split and f"direction/{split}" in cols:
                ordered.insert(ordered.index(c) + 1, f"direction/{split}")
    header = "| alpha | " + " | ".join(c.replace("vector/", "") for c in ordered) + " |"
    lines = ["RR / ORR, SAE latent steering next to direction steering"
             + ("" if comparison.get("same_judge") else " (different judges!)"), "",
             header, "|" + "---|" * (len(ordered) + 1)]
    for r in rows:
        lines.append(f"| {r['alpha']:g} | " + " | ".join(_cell(r.get(c)) for c in ordered) + " |")
    if not compact:
        lines.append("")
        lines.append("trade-off gap (max |ORR difference| at matched RR) of each SAE curve:")
        for label, g in comparison["gaps"].items():
            own = g.get("own_direction")
            mx = g.get("max_over_directions")
            lines.append(f"- {label.replace('vector/', '')}: vs its split's direction "
                         f"{'-' if own is None else f'{own:.3f}'}; max over directions "
                         f"{'-' if mx is None else f'{mx:.3f}'}")
        dg = comparison.get("directions_tradeoff_gap") or {}
        if dg.get("value") is not None:
            lines.append(f"- between directions (steering stage): max {dg['value']:.3f}, mean over "
                         f"pairs {dg['mean_over_pairs']:.3f}")
    return "\n".join(lines) + "\n"


def plot_tradeoff_vs_directions(sae_metrics: Mapping[str, Any], dir_metrics: Mapping[str, Any],
                                path: Path) -> Path:
    """ORR against RR: every direction's curve (grey) and every SAE latent-set curve (colour)."""
    from ..figures import new_figure, palette, save_png

    fig = new_figure((6.6, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    first = True
    for label, c in _rates_by_curve(dir_metrics).items():
        pts = [(v["rr"], v["orr"]) for _, v in sorted(c.items())
               if v["rr"] is not None and v["orr"] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="0.7", lw=1,
                    label="directions" if first else None)
            first = False
    sae_curves = _rates_by_curve(sae_metrics)
    for colour, (label, c) in zip(palette(len(sae_curves)), sae_curves.items()):
        pts = [(v["rr"], v["orr"]) for _, v in sorted(c.items())
               if v["rr"] is not None and v["orr"] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=colour, ms=4,
                    label=label.replace("vector/", ""))
    ax.set_xlabel("RR (refusal rate, harmful)")
    ax.set_ylabel("ORR (over-refusal rate, benign)")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_title("SAE latent steering vs direction steering")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_png(fig, path)


# --------------------------------------------------------------------------- registration
def _stages():
    from ..pipeline import Stage

    def enabled(c) -> bool:
        return bool(c.sae.enabled)

    return [
        Stage(STAGE_SAE, ("labels", "layer_scan"), sae_settings, run_sae_stage,
              "train an SAE on this model (or load a published one); FVE, L0, dead latents",
              enabled=enabled),
        Stage(STAGE_ANALYSIS, (STAGE_SAE, "activations", "pools", "labels"), analysis_settings,
              run_sae_analysis_stage,
              "SAE latents per split: scores, top-K, shared core and long tail, examples",
              enabled=enabled),
        Stage(STAGE_STEERING, (STAGE_ANALYSIS, STAGE_SAE, "directions", "geometry", "test_set",
                               "labels"),
              steering_settings, run_sae_steering_stage,
              "steer with sums of SAE decoder rows (core, per-split top-K); RR / ORR",
              enabled=enabled),
    ]


def _register() -> None:
    from ..pipeline import register_stages

    register_stages(_stages)


_register()
