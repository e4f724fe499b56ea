"""Difference-in-means refusal directions, their manifests, and the layer scan."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .artifacts import read_json, read_tensors, write_json, write_tensors
from .errors import UserError


@dataclass
class Direction:
    split: str
    vector: torch.Tensor
    """Unit-norm float32 ``[d_model]``."""
    raw_norm: float
    """Norm of mean(HR) - mean(BC) before normalising."""
    hr_proj_mean: float
    bc_proj_mean: float
    n_hr: int
    n_bc: int
    layer: int
    position: int
    model: str
    hr_ids: list[str] = field(default_factory=list)
    bc_ids: list[str] = field(default_factory=list)

    @property
    def projection_gap(self) -> float:
        """How far apart HR and BC sit along the direction: the natural unit for alpha."""
        return self.hr_proj_mean - self.bc_proj_mean

    def manifest(self) -> dict:
        data = asdict(self)
        data.pop("vector")
        data["projection_gap"] = self.projection_gap
        data["d_model"] = int(self.vector.numel())
        data["direction_sha256"] = hashlib.sha256(
            self.vector.float().contiguous().numpy().tobytes()).hexdigest()
        return data


def diff_in_means(hr: torch.Tensor, bc: torch.Tensor) -> tuple[torch.Tensor, float]:
    """unit(mean(hr) - mean(bc)) and the raw norm, in float64 for a stable mean."""
    if hr.shape[0] == 0 or bc.shape[0] == 0:
        raise UserError("a direction needs at least one HR and one BC prompt")
    diff = hr.double().mean(0) - bc.double().mean(0)
    norm = float(diff.norm())
    if norm == 0.0:
        raise UserError("HR and BC activations have identical means: no direction to compute")
    return (diff / norm).float(), norm


def compute_direction(split: str, hr: torch.Tensor, bc: torch.Tensor, *, layer: int, position: int,
                      model: str, hr_ids: Sequence[str] = (), bc_ids: Sequence[str] = ()) -> Direction:
    unit, norm = diff_in_means(hr, bc)
    return Direction(
        split=split, vector=unit, raw_norm=norm,
        hr_proj_mean=float((hr.float() @ unit).mean()),
        bc_proj_mean=float((bc.float() @ unit).mean()),
        n_hr=int(hr.shape[0]), n_bc=int(bc.shape[0]), layer=layer, position=position, model=model,
        hr_ids=list(hr_ids), bc_ids=list(bc_ids))


def save_directions(directions: Mapping[str, Direction], out_dir: str | Path) -> dict[str, Path]:
    """``directions.safetensors`` (one float32 [d_model] tensor per split) + ``directions.json``."""
    out_dir = Path(out_dir)
    tensors = {name: d.vector.float() for name, d in directions.items()}
    paths = {
        "tensors": write_tensors(out_dir / "directions.safetensors", tensors,
                                 metadata={"format": "refusal-atlas directions v1"}),
        "manifest": write_json(out_dir / "directions.json",
                               {"splits": list(directions),
                                "directions": {n: d.manifest() for n, d in directions.items()}}),
    }
    return paths


def load_directions(out_dir: str | Path) -> dict[str, Direction]:
    out_dir = Path(out_dir)
    tensors = read_tensors(out_dir / "directions.safetensors")
    manifest = read_json(out_dir / "directions.json")
    result = {}
    for name in manifest["splits"]:
        meta = dict(manifest["directions"][name])
        for extra in ("projection_gap", "d_model", "direction_sha256"):
            meta.pop(extra, None)
        result[name] = Direction(vector=tensors[name], **meta)
    return result


# ---------------------------------------------------------------------------
# Layer scan


@dataclass
class LayerScan:
    layers: list[int]
    separation: list[float]
    """Held-out Cohen's d of HR vs BC projections onto the direction (2-fold)."""
    accuracy: list[float]
    """Held-out accuracy of thresholding the projection at the midpoint of the two means."""
    projection_gap: list[float]
    raw_norm: list[float]
    chosen_layer: int
    rule: str
    per_split: dict[str, list[float]] = field(default_factory=dict)
    induce: dict[int, float] = field(default_factory=dict)
    """Causal check per candidate layer: mean change of the refusal log-odds of BC prompts'
    first response token when alpha = the layer's HR/BC projection gap is added along the
    layer's direction (see :func:`induce_scores`)."""
    refusal_tokens: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LayerScan":
        data = dict(data)
        data["induce"] = {int(k): v for k, v in (data.get("induce") or {}).items()}
        return cls(**data)


def _held_out_stats(hr: torch.Tensor, bc: torch.Tensor, seed: int) -> tuple[float, float]:
    """2-fold: direction from one half, Cohen's d and accuracy on the other, averaged."""
    gen = torch.Generator().manual_seed(seed)
    hr_perm, bc_perm = torch.randperm(len(hr), generator=gen), torch.randperm(len(bc), generator=gen)
    ds, accs = [], []
    for fold in range(2):
        hr_tr, hr_te = _halves(hr[hr_perm], fold)
        bc_tr, bc_te = _halves(bc[bc_perm], fold)
        unit, _ = diff_in_means(hr_tr, bc_tr)
        mid = 0.5 * float((hr_tr.float() @ unit).mean() + (bc_tr.float() @ unit).mean())
        p_hr, p_bc = hr_te.double() @ unit.double(), bc_te.double() @ unit.double()
        pooled = float(torch.sqrt(0.5 * (p_hr.var(unbiased=True) + p_bc.var(unbiased=True))))
        ds.append(float(p_hr.mean() - p_bc.mean()) / max(pooled, 1e-12))
        accs.append(float(((p_hr > mid).sum() + (p_bc <= mid).sum()) / (len(p_hr) + len(p_bc))))
    return float(np.mean(ds)), float(np.mean(accs))


def _same_means(hr: torch.Tensor, bc: torch.Tensor) -> bool:
    diff = hr.double().mean(0) - bc.double().mean(0)
    return float(diff.norm()) <= 1e-9 * max(float(hr.double().norm()), 1.0)


def _halves(x: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    half = len(x) // 2
    a, b = x[:half], x[half:]
    return (a, b) if fold == 0 else (b, a)


def layer_scan(hr: torch.Tensor, bc: torch.Tensor, layers: Sequence[int], *,
               per_split: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
               n_model_layers: int | None = None, max_depth: float = 0.8,
               plateau: float = 0.9, seed: int = 0) -> LayerScan:
    """Separation of HR and BC activations along the diff-in-means direction, per layer.

    ``hr`` and ``bc`` are ``[n, n_layers_scanned, d]``. The chosen layer is the earliest
    one whose held-out separation reaches ``plateau`` of the best separation among layers
    in the first ``max_depth`` of the model: refusal is linearly readable there, and late
    layers (which mostly prepare the output tokens) are avoided, as in Arditi et al. 2024.
    """
    if hr.shape[0] < 4 or bc.shape[0] < 4:
        raise UserError(f"the layer scan needs at least 4 HR and 4 BC prompts (got {hr.shape[0]} "
                        f"and {bc.shape[0]})")
    layers = list(layers)
    seps, accs, gaps, norms = [], [], [], []
    for li in range(len(layers)):
        if _same_means(hr[:, li], bc[:, li]):
            # e.g. layer 0 at a template position: every prompt has the same token there
            seps.append(0.0), accs.append(0.5), gaps.append(0.0), norms.append(0.0)
            continue
        sep, acc = _held_out_stats(hr[:, li], bc[:, li], seed)
        unit, norm = diff_in_means(hr[:, li], bc[:, li])
        seps.append(sep)
        accs.append(acc)
        gaps.append(float((hr[:, li].float() @ unit).mean() - (bc[:, li].float() @ unit).mean()))
        norms.append(norm)
    depth = n_model_layers or (max(layers) + 1)
    eligible = [i for i, layer in enumerate(layers) if 0 < layer <= max_depth * depth] or \
        list(range(len(layers)))
    best = max(seps[i] for i in eligible)
    chosen = next(layers[i] for i in eligible if seps[i] >= plateau * best)
    split_seps = {}
    for name, (s_hr, s_bc) in (per_split or {}).items():
        if len(s_hr) >= 4 and len(s_bc) >= 4:
            split_seps[name] = [0.0 if _same_means(s_hr[:, li], s_bc[:, li])
                                else _held_out_stats(s_hr[:, li], s_bc[:, li], seed)[0]
                                for li in range(len(layers))]
    rule = (f"earliest layer in 1..{int(max_depth * depth)} whose held-out HR/BC separation "
            f"(Cohen's d) reaches {plateau:.0%} of the best in that range")
    return LayerScan(layers=layers, separation=seps, accuracy=accs, projection_gap=gaps,
                     raw_norm=norms, chosen_layer=chosen, rule=rule, per_split=split_seps)


def refusal_first_tokens(tokenizer, responses: Sequence[str], *, coverage: float = 0.8,
                         max_tokens: int = 5) -> list[int]:
    """The first tokens with which the model starts its own refusals (most common first),
    enough of them to cover ``coverage`` of the refusals: "I" of "I'm sorry", "As" of
    "As an AI", ... Read from the base model's labelled responses, so no per-model list."""
    from collections import Counter

    counts = Counter()
    for text in responses:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            counts[ids[0]] += 1
    total = sum(counts.values())
    chosen, covered = [], 0
    for token, n in counts.most_common(max_tokens):
        chosen.append(int(token))
        covered += n
        if covered >= coverage * total:
            break
    return chosen


def refusal_log_odds(logits: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """log p(refusal start) - log p(anything else) of next-token logits [B, V]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    refuse = torch.logsumexp(logp[:, list(token_ids)], dim=-1)
    other = torch.log1p(-refuse.exp().clamp(max=1 - 1e-6))
    return refuse - other


@torch.no_grad()
def induce_scores(model, batch, candidates: Mapping[int, tuple[torch.Tensor, float]],
                  token_ids: Sequence[int], on_layer=None) -> dict[int, float]:
    """Per layer: how much adding alpha * d at resid_pre raises the refusal log-odds.

    ``candidates`` maps layer -> (unit direction, alpha). One forward pass per layer over
    ``batch`` (benign, complied prompts), reading only the last position's logits.
    """
    from .hooks import add_to_resid_pre

    def log_odds() -> torch.Tensor:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, use_cache=False, logits_to_keep=1).logits
        return refusal_log_odds(logits[:, -1], token_ids)

    base = log_odds()
    scores = {}
    for layer, (unit, alpha) in candidates.items():
        with add_to_resid_pre(model, layer, unit, alpha=alpha):
            scores[layer] = float((log_odds() - base).mean())
        if on_layer is not None:
            on_layer()
    return scores


def plot_layer_scan(scan: LayerScan, path: str | Path) -> Path:
    from .figures import new_figure, save_png

    fig = new_figure((7, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(scan.layers, scan.separation, marker="o", color="black", label="all splits")
    for name, seps in scan.per_split.items():
        ax.plot(scan.layers, seps, alpha=0.35, linewidth=1)
    ax.axvline(scan.chosen_layer, color="tab:red", linestyle="--",
               label=f"chosen layer {scan.chosen_layer}")
    ax.set_xlabel("layer (resid_pre)")
    ax.set_ylabel("held-out HR/BC separation (Cohen's d)")
    handles, labels = ax.get_legend_handles_labels()
    if scan.induce:
        twin = ax.twinx()
        layers = sorted(scan.induce)
        line = twin.plot(layers, [scan.induce[k] for k in layers], marker="s", color="tab:blue",
                         label="refusal log-odds gained by steering BC prompts")
        twin.set_ylabel("induce score", color="tab:blue")
        handles, labels = handles + line, labels + [line[0].get_label()]
    ax.legend(handles, labels, loc="best", fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


# ---------------------------------------------------------------------------
# Run-folder stages


def run_layer_scan_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    """Scan every layer on the training pools, then fix the layer the later stages use."""
    from .activations import extract_activations
    from .labels import load_training_pools

    cfg, scan_cfg = ctx.config.activations, ctx.config.layer_scan
    pools = load_training_pools(ctx.stage_dir("pools"))
    by_id = ctx.suite.by_id()
    n_model = ctx.lm.n_layers
    scan = None
    if scan_cfg.enabled:
        layers = list(range(0, n_model + 1, scan_cfg.stride))
        hr_ids = list(dict.fromkeys(i for p in pools.splits.values() for i in p.hr_ids))
        bc_ids = list(dict.fromkeys(i for p in pools.splits.values() for i in p.bc_ids))
        acts = extract_activations(ctx.lm, ctx.formatter, [by_id[i].text for i in hr_ids + bc_ids],
                                   layers, [cfg.position], batch_size=cfg.batch_size,
                                   cache=ctx.activation_cache, description="layer scan")[:, :, 0]
        row = {pid: k for k, pid in enumerate(hr_ids + bc_ids)}
        hr, bc = acts[: len(hr_ids)], acts[len(hr_ids):]
        per_split = {name: (acts[[row[i] for i in p.hr_ids]], acts[[row[i] for i in p.bc_ids]])
                     for name, p in pools.splits.items()}
        scan = layer_scan(hr, bc, layers, per_split=per_split, n_model_layers=n_model,
                          max_depth=scan_cfg.max_depth, plateau=scan_cfg.plateau)
        if scan_cfg.method == "causal":
            _add_causal_choice(ctx, scan, hr, bc, layers, [by_id[i].text for i in bc_ids],
                               hr_ids, max_depth=scan_cfg.max_depth,
                               induce_fraction=scan_cfg.induce_fraction)
        write_json(out_dir / "layer_scan.json", scan.to_dict())
        plot_layer_scan(scan, out_dir / "layer_scan.png")
    if cfg.layer is not None:
        layer, reason = cfg.layer, "set in the config"
    elif ctx.lm.preset is not None:
        layer, reason = ctx.lm.preset.layer, f"model preset ({ctx.lm.preset.note})"
    elif scan is not None:
        layer, reason = scan.chosen_layer, f"layer scan: {scan.rule}"
    else:
        layer, reason = n_model // 2, "middle layer (layer scan disabled, no preset)"
    if not 0 <= layer <= n_model:
        raise UserError(f"layer {layer} is out of range for {ctx.lm.name} (0..{n_model})")
    write_json(out_dir / "layer.json", {"layer": layer, "position": cfg.position,
                                        "reason": reason, "n_layers": n_model})
    return {"layer": layer, "reason": reason,
            "scan_choice": scan.chosen_layer if scan else None}


def _add_causal_choice(ctx, scan: LayerScan, hr: torch.Tensor, bc: torch.Tensor,
                       layers: list[int], bc_texts: list[str], hr_ids: list[str], *,
                       max_depth: float, induce_fraction: float, max_prompts: int = 16) -> None:
    """Choose the layer whose direction most raises refusal when added (Arditi et al.'s
    'induce' criterion, scored on the first response token instead of generations)."""
    from .chat import pad_left
    from .labels import load_label_records

    records = {r.prompt_id: r for r in load_label_records(ctx.stage_dir("labels"))}
    tokens = refusal_first_tokens(ctx.lm.tokenizer, [records[i].response for i in hr_ids
                                                     if i in records])
    if not tokens:
        return
    n_model = ctx.lm.n_layers
    candidates = {}
    for li, layer in enumerate(layers):
        if 0 < layer <= max_depth * n_model and not _same_means(hr[:, li], bc[:, li]):
            unit, _ = diff_in_means(hr[:, li], bc[:, li])
            candidates[layer] = (unit, scan.projection_gap[li])
    if not candidates:
        return
    fmt = ctx.formatter
    batch = pad_left([fmt.encode(t) for t in bc_texts[:max_prompts]], fmt.pad_id).to(ctx.lm.device)
    from .progress import progress_bar

    with progress_bar("layer scan: induce", total=len(candidates), unit="layer") as bar:
        scores = induce_scores(ctx.lm.model, batch, candidates, tokens, on_layer=bar.advance)
    scan.induce = scores
    scan.refusal_tokens = [ctx.lm.tokenizer.decode([t]) for t in tokens]
    best = max(scores.values())
    if best <= 0:  # no layer's direction causes refusal: keep the separation rule's choice
        scan.rule += "; the causal check found no layer that raises refusal"
        return
    # The induce score keeps growing towards the output (late layers act on the logits
    # directly), so "the best layer" would always be the last one allowed. The earliest
    # layer that reaches a fraction of the best is where the direction starts to *cause*
    # refusal, which is the layer the method wants (mid-depth, like the paper's choices).
    scan.chosen_layer = min(k for k in sorted(scores) if scores[k] >= induce_fraction * best)
    scan.rule = (f"earliest layer in 1..{int(max_depth * n_model)} whose direction, added with "
                 f"alpha = its HR/BC projection gap, raises the refusal log-odds of the first "
                 f"response token on {batch.input_ids.shape[0]} BC prompts by at least "
                 f"{induce_fraction:.0%} of the best layer's gain (refusal starts: "
                 f"{', '.join(repr(t) for t in scan.refusal_tokens)})")


def run_directions_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    from .activations import load_activation_table
    from .labels import load_training_pools

    ids, acts, meta = load_activation_table(ctx.stage_dir("activations") / "acts.safetensors")
    row = {pid: k for k, pid in enumerate(ids)}
    pools = load_training_pools(ctx.stage_dir("pools"))
    model_name = ctx.config.model.name
    layer, position = int(meta["layer"]), int(meta["position"])
    directions = {}
    for name, pool in pools.splits.items():
        directions[name] = compute_direction(
            name, acts[[row[i] for i in pool.hr_ids]], acts[[row[i] for i in pool.bc_ids]],
            layer=layer, position=position, model=model_name, hr_ids=pool.hr_ids,
            bc_ids=pool.bc_ids)
    save_directions(directions, out_dir)
    return {"layer": layer, "position": position,
            "splits": {n: {"n_hr": d.n_hr, "n_bc": d.n_bc, "raw_norm": round(d.raw_norm, 4),
                           "projection_gap": round(d.projection_gap, 4)}
                       for n, d in directions.items()}}
