"""``sae``: train an SAE on this model (``sae.source: train``) or load a published one.

A trained SAE is saved in the SAELens format under ``sae/saelens/``; ``sae/sae.json`` says
where the SAE is, which layer it reads and how well it reconstructs (overall, held-out, and
at the analysis position). A trained SAE reads ``resid_pre`` of ``sae.layer`` (default: the
direction layer, so SAE and direction steering act at the same place); a published SAE
reads its own hook layer (``sae.layer``, when set, must agree: ``check_compatible``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ...activations import extract_activations
from ...artifacts import read_jsonl, write_json
from ...errors import UserError
from ...plots.sae import plot_training
from ...progress import console
from ...sae.corpus import CorpusConfig, CorpusPrompt, collect_corpus
from ...sae.loaders import load_sae, save_saelens_dir
from ...sae.loaders.hub import looks_like_hub_path
from ...sae.models import check_compatible
from ...sae.train import SAETrainConfig, evaluate_sae, train_sae
from ..inputs import RESPONSES_FILE, SAE_JSON, load_label_records
from ..stage import Stage, file_setting, model_settings

SAELENS_SUBDIR = "saelens"
# The fingerprint keys of a trained SAE's settings, as they were when the sae section was
# flat (run folders made then stay done): key -> field of sae.train.
_TRAIN_SETTINGS = {"architecture": "architecture", "expansion": "expansion", "k": "k",
                   "train_steps": "steps", "train_batch_size": "batch_size",
                   "train_max_tokens": "max_tokens", "seed": "seed"}
# ... and the sae.train fields the pipeline sets itself or that leave the SAE as it is
_FINGERPRINTED_AS_BEFORE = {*_TRAIN_SETTINGS.values(), "device", "num_threads", "log_every"}


def _device(ctx) -> str:
    device = str(ctx.config.model.device)
    device = "cuda" if device == "auto" else device  # auto: CUDA when there is one
    return device if device.startswith("cuda") and torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- the SAE stage
def _corpus_prompts(ctx) -> list:
    responses = {r["prompt_id"]: r.get("response")
                 for r in read_jsonl(ctx.stage_dir("labels") / RESPONSES_FILE)}
    return [CorpusPrompt(p.id, p.text, responses.get(p.id)) for p in ctx.suite.all_prompts()]


def _metric_view(m: Mapping[str, float] | None) -> dict | None:
    if not m:
        return None
    return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in m.items()}


def run(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.sae
    if cfg.source == "train":
        return _train_stage(ctx, out_dir)
    return _load_stage(ctx, out_dir)


def _train_stage(ctx, out_dir: Path) -> dict:
    cfg = ctx.config.sae
    lm = ctx.lm
    layer = cfg.layer if cfg.layer is not None else ctx.layer
    if not 0 <= layer < lm.n_layers:
        raise UserError(f"sae.layer {layer} is out of range: the model has layers "
                        f"0..{lm.n_layers - 1}")
    position = ctx.config.activations.position
    corpus = collect_corpus(
        lm, ctx.formatter, _corpus_prompts(ctx),
        CorpusConfig(layer=layer, position=position, max_rows=cfg.train.max_tokens,
                     oversample=cfg.corpus.oversample, holdout=cfg.corpus.holdout,
                     include_responses=cfg.corpus.responses, files=list(cfg.corpus.files),
                     chunk_tokens=ctx.config.activations.max_prompt_tokens,
                     seed=cfg.train.seed, batch_size=ctx.config.activations.batch_size),
        cache=ctx.activation_cache)
    console.print(f"SAE corpus: {corpus.stats['n_rows']} rows "
                  f"({', '.join(f'{k} {v}' for k, v in corpus.stats['rows_by_source'].items())}) "
                  f"in {corpus.stats['seconds']:.0f}s")
    tcfg = cfg.train.model_copy(update={
        "batch_size": min(cfg.train.batch_size, corpus.train.shape[0]), "device": _device(ctx)})
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
    plot_training(report.history, out_dir / "training.png")
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
    console.print(describe_metrics(meta))
    return _sae_summary(meta)


def _load_stage(ctx, out_dir: Path) -> dict:
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
    console.print(describe_metrics(meta))
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


def describe_metrics(meta: Mapping[str, Any]) -> str:
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


_HUB_PREFIXES = ("saelens:", "gemma-scope:", "dictionary-learning:")


def check(ctx) -> None:
    """A published SAE given as a local file or folder exists and loads; corpus files of an
    SAE trained here exist."""
    cfg = ctx.config.sae
    if cfg.source == "train":
        missing = [f for f in cfg.corpus.files if not Path(f).expanduser().is_file()]
        if missing:
            raise UserError(f"sae.corpus.files: file not found: {', '.join(missing)}")
        return
    if cfg.source.startswith(_HUB_PREFIXES) or looks_like_hub_path(cfg.source, min_parts=2):
        return  # on the hub: checked when the stage loads it
    if not Path(cfg.source).expanduser().exists():
        raise UserError(f"sae.source: no SAE file or folder at {cfg.source} (or use 'train', "
                        "saelens:RELEASE/ID, gemma-scope:PATH)")
    load_sae(cfg.source)


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


def settings(cfg) -> dict:
    s = cfg.sae
    out: dict[str, Any] = {"model": model_settings(cfg), "position": cfg.activations.position,
                           "layer": s.layer}
    if s.source == "train":
        out["source"] = "train"
        out.update({key: getattr(s.train, name) for key, name in _TRAIN_SETTINGS.items()})
        out.update({
            "corpus_files": [[f, file_setting(f)] for f in s.corpus.files],
            "corpus_oversample": s.corpus.oversample, "corpus_holdout": s.corpus.holdout,
            "corpus_responses": s.corpus.responses,
        })
        # the other sae.train fields count only where set: keys of runs made before they
        # could be set stay the same
        default = SAETrainConfig().to_dict()
        changed = {name: value for name, value in s.train.to_dict().items()
                   if name not in _FINGERPRINTED_AS_BEFORE and value != default[name]}
        if changed:
            out["train_options"] = changed
    else:
        out["source"] = _source_fingerprint(s.source)
    return out


STAGE = Stage("sae", ("labels", "layer_scan"), settings, run,
              "train an SAE on this model (or load a published one); FVE, L0, dead latents",
              enabled=lambda c: bool(c.sae.enabled), disabled_by="sae.enabled = false",
              check=check, outputs=("sae.json", "train_report.json", "saelens/cfg.json", "saelens/sae_weights.safetensors"))
