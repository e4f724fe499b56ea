"""The training loop of :func:`train_sae`: rows, initialisation, schedule, packaging.

The recipe is described in :mod:`refusal_atlas.sae.train`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from ...errors import UserError
from ...progress import progress_bar
from ..models import SAE, SAEInfo
from .config import SAETrainConfig
from .data import geometric_median, row_norms
from .evaluate import evaluate_sae
from .jumprelu import JumpReLUTrainer
from .topk import TopKTrainer


@dataclass
class SAETrainReport:
    """What :func:`train_sae` did and how well the SAE reconstructs."""

    config: dict[str, Any]
    d_in: int
    d_sae: int
    steps: int
    batch_size: int
    lr: float
    compute_dtype: str
    n_rows: int
    n_train: int
    n_excluded_outliers: int
    outlier_norm_cutoff: float | None
    input_scale: float
    seconds: float
    seconds_per_1k_steps: float
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float] | None = None
    eval_metrics_without_outliers: dict[str, float] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    planned_steps: int | None = None
    """The steps asked for; more than ``steps`` when training stopped at a plateau."""
    plateau_at: int | None = None
    """The step at which FVE had flattened and the lr began its final decay (None: never)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _compute_dtype(config: SAETrainConfig, device: torch.device) -> torch.dtype:
    if config.compute_dtype == "float32":
        return torch.float32
    if config.compute_dtype == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def _lr_factor(step: int, total: int, warmup: float, decay_start: float) -> float:
    warm = max(1, round(warmup * total))
    if step < warm:
        return (step + 1) / warm
    start = int(decay_start * total)
    if step >= start and total > start:
        return max(0.0, (total - step) / (total - start))
    return 1.0


def _flattened(history: list[dict[str, float]], config: SAETrainConfig, step: int,
               total: int) -> bool:
    """Whether FVE gained less than ``config.plateau`` over the last ``plateau_window``
    logged intervals, during the constant-lr phase (after warmup, before the decay)."""
    if config.plateau is None or len(history) <= config.plateau_window:
        return False
    if step + 1 <= config.warmup * total or step + 1 >= config.decay_start * total:
        return False
    gain = history[-1]["fve"] - history[-1 - config.plateau_window]["fve"]
    return gain < config.plateau


def _decay_from(done: int, total: int, decay_start: float) -> int:
    """The new step count when the lr starts decaying after ``done`` steps: the decay keeps
    its share of the schedule (``1 - decay_start`` of all steps)."""
    return min(total, max(done + 1, math.ceil(done / decay_start)))


def _set_description(bar: Any, text: str) -> None:
    """Show running metrics in the progress bar's description, when it is a live bar."""
    progress, task_id = getattr(bar, "_progress", None), getattr(bar, "_task_id", None)
    if progress is not None and task_id is not None:
        progress.update(task_id, description=text)



def _validate(activations: torch.Tensor, config: SAETrainConfig) -> None:
    if not isinstance(activations, torch.Tensor) or activations.ndim != 2:
        shape = list(activations.shape) if isinstance(activations, torch.Tensor) else type(activations)
        raise UserError(f"activations must be a 2-D tensor [N, d_in], got {shape}")
    if not activations.is_floating_point():
        raise UserError(f"activations must be floating point, got {activations.dtype}")
    if config.architecture not in ("topk", "jumprelu"):
        raise UserError(f"unknown training architecture {config.architecture!r}; use topk or jumprelu")
    if config.batch_size <= 0:
        raise UserError(f"batch_size must be positive, got {config.batch_size}")
    if config.steps is not None and config.steps <= 0:
        raise UserError(f"steps must be positive, got {config.steps}")
    if config.steps is None and not config.epochs > 0:
        raise UserError(f"epochs must be positive, got {config.epochs}")
    if config.expansion <= 0 and config.d_sae is None:
        raise UserError(f"expansion must be positive, got {config.expansion}")
    if not 0 <= config.warmup < 1 or not 0 < config.decay_start <= 1:
        raise UserError("warmup must lie in [0, 1) and decay_start in (0, 1]")
    if config.exclude_norm_outliers is not None and not config.exclude_norm_outliers > 1:
        raise UserError("exclude_norm_outliers must be > 1 (a multiple of the median norm) or None")


def train_sae(
    activations: torch.Tensor,
    config: SAETrainConfig | None = None,
    *,
    hook_layer: int,
    model_name: str,
    eval_activations: torch.Tensor | None = None,
    hook_name: str | None = None,
) -> tuple[SAE, SAETrainReport]:
    """Train an SAE on ``activations`` [N, d_in] read at ``resid_pre`` of ``hook_layer``.

    Returns the SAE (float32, on CPU, encoding raw activations) and a report with timing,
    the loss history and :func:`evaluate_sae` metrics on (a subset of) the training rows
    and, if given, on ``eval_activations`` (as given, and without norm outliers).

    Args:
        activations: training rows ``[N, d_in]``, raw (unscaled) residual activations.
        config: the settings (default: :class:`SAETrainConfig` ``()``).
        hook_layer: the HF block whose input (``resid_pre``) the rows were read at.
        model_name: recorded in the SAE's info.
        eval_activations: optional held-out rows ``[M, d_in]`` for the report.
        hook_name: recorded hook name (default ``blocks.{hook_layer}.hook_resid_pre``).

    Example:
        >>> sae, report = train_sae(acts, SAETrainConfig(steps=500), hook_layer=12,
        ...                         model_name="qwen")  # doctest: +SKIP
        >>> report.train_metrics["fve"]  # doctest: +SKIP
    """
    config = config or SAETrainConfig()
    if config.num_threads is None:
        return _train_sae(activations, config, hook_layer=hook_layer, model_name=model_name,
                          eval_activations=eval_activations, hook_name=hook_name)
    if config.num_threads <= 0:
        raise UserError(f"num_threads must be positive, got {config.num_threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        return _train_sae(activations, config, hook_layer=hook_layer, model_name=model_name,
                          eval_activations=eval_activations, hook_name=hook_name)
    finally:
        torch.set_num_threads(previous)


def _train_sae(
    activations: torch.Tensor,
    config: SAETrainConfig,
    *,
    hook_layer: int,
    model_name: str,
    eval_activations: torch.Tensor | None,
    hook_name: str | None,
) -> tuple[SAE, SAETrainReport]:
    _validate(activations, config)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("config.device is cuda, but no CUDA device is available")
    cdtype = _compute_dtype(config, device)
    n_rows, d_in = activations.shape
    d_sae = config.d_sae if config.d_sae is not None else config.expansion * d_in
    if config.architecture == "topk" and not 0 < config.k <= d_sae:
        raise UserError(f"k must lie in 1..d_sae={d_sae}, got {config.k}")

    gen = torch.Generator(device="cpu").manual_seed(config.seed)

    # ---- rows to train on
    norms_all = row_norms(activations)
    if not bool(torch.isfinite(norms_all).all()):
        raise UserError("activations contain NaN or infinite values")
    cutoff = (
        float(config.exclude_norm_outliers * norms_all.median())
        if config.exclude_norm_outliers is not None else None
    )
    outliers = norms_all > cutoff if cutoff is not None else torch.zeros_like(norms_all, dtype=torch.bool)
    n_excluded = int(outliers.sum())
    keep = (~outliers).nonzero().squeeze(1)
    n_train = int(keep.numel())
    if n_train < config.batch_size:
        raise UserError(
            f"only {n_train} training rows (after dropping {n_excluded} norm outliers); "
            f"need at least batch_size={config.batch_size}"
        )
    data = activations[keep] if n_excluded else activations
    data = data.to(device)

    mean_sq = float(norms_all[keep].double().pow(2).mean())
    scale = math.sqrt(d_in / mean_sq) if config.normalize_inputs and mean_sq > 0 else 1.0

    steps_per_epoch = max(1, n_train // config.batch_size)
    total_steps = config.steps if config.steps is not None else \
        max(1, round(config.epochs * steps_per_epoch))
    lr = config.lr if config.lr is not None else 4e-4 * math.sqrt(2**14 / d_sae)

    # ---- parameters (fp32 master copies)
    W_dec = torch.randn(d_sae, d_in, generator=gen)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    W_dec = W_dec.to(device)
    W_enc = W_dec.T.clone().contiguous()
    b_enc = torch.zeros(d_sae, device=device)
    sample = data[torch.randperm(n_train, generator=gen)[:8192].to(device)].float() * scale
    if config.b_dec_init == "geometric_median":
        b_dec = geometric_median(sample)
    elif config.b_dec_init == "mean":
        b_dec = sample.mean(dim=0)
    else:
        b_dec = torch.zeros(d_in, device=device)
    params = [torch.nn.Parameter(t) for t in (W_enc, b_enc, W_dec, b_dec)]
    W_enc, b_enc, W_dec, b_dec = params
    threshold = None
    if config.architecture == "jumprelu":
        if config.jumprelu_init_threshold is not None:
            init_thr = torch.full((d_sae,), float(config.jumprelu_init_threshold), device=device)
        else:
            # each latent starts firing on ~init_l0/d_sae of the rows: a sparse start, so
            # the L0 penalty fine-tunes thresholds instead of dragging them up from ~0
            with torch.no_grad():
                pre0 = (sample[:4096] - b_dec) @ W_enc + b_enc
                q = 1.0 - min(0.5, config.jumprelu_init_l0 / d_sae)
                init_thr = torch.quantile(pre0, q, dim=0).clamp_min(0.0)
        threshold = torch.nn.Parameter(init_thr.contiguous())
        params.append(threshold)
        trainer: TopKTrainer | JumpReLUTrainer = JumpReLUTrainer(
            W_enc, b_enc, W_dec, b_dec, threshold, config, cdtype
        )
    else:
        trainer = TopKTrainer(W_enc, b_enc, W_dec, b_dec, config, cdtype)

    adam_kw: dict[str, Any] = {"lr": lr, "betas": config.adam_betas}
    try:
        optimizer = torch.optim.Adam(params, fused=True, **adam_kw)
    except (RuntimeError, TypeError):  # fused Adam unavailable for this device/dtype
        optimizer = torch.optim.Adam(params, **adam_kw)

    # ---- loop
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    order = torch.randperm(n_train, generator=gen)
    pos = 0
    start = time.perf_counter()
    description = f"SAE {config.architecture} d_sae={d_sae}"
    planned_steps, plateau_at = total_steps, None
    with progress_bar(description, total=total_steps, unit="step") as bar:
        step = -1
        while step + 1 < total_steps:
            step += 1
            if pos + config.batch_size > n_train:
                order = torch.randperm(n_train, generator=gen)
                pos = 0
            batch_idx = order[pos:pos + config.batch_size].to(device)
            pos += config.batch_size
            x = data[batch_idx].float()
            if scale != 1.0:
                x = x * scale

            factor = _lr_factor(step, total_steps, config.warmup, config.decay_start)
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            if isinstance(trainer, JumpReLUTrainer):
                ramp = max(1, int(config.l0_warmup * total_steps))
                stats = trainer.step(x, config.l0_coeff * min(1.0, (step + 1) / ramp))
            else:
                stats = trainer.step(x)

            with torch.no_grad():
                # keep decoder rows unit norm: drop the radial gradient, renormalise after
                if W_dec.grad is not None:
                    radial = torch.linalg.vecdot(W_dec.grad, W_dec)
                    W_dec.grad.addcmul_(radial[:, None], W_dec, value=-1.0)
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            with torch.no_grad():
                W_dec.div_(W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
                if threshold is not None:
                    threshold.clamp_(min=0.0)
            for p in params:
                p.grad = None

            for key, value in stats.items():
                running[key] = running.get(key, 0.0) + value
            bar.advance(1)
            if (step + 1) % config.log_every == 0 or step + 1 == total_steps:
                count = (step % config.log_every) + 1
                entry = {"step": float(step + 1), "lr": lr * factor}
                entry.update({k: v / count for k, v in running.items()})
                history.append(entry)
                running = {}
                _set_description(
                    bar,
                    f"{description} loss={entry['loss']:.2f} fve={entry['fve']:.3f} "
                    f"dead={entry['dead_fraction']:.2f}",
                )
                if not math.isfinite(entry["loss"]):
                    raise UserError(
                        f"SAE training diverged at step {step + 1} (loss {entry['loss']}); "
                        "lower the learning rate"
                    )
                if plateau_at is None and _flattened(history, config, step, total_steps):
                    plateau_at = step + 1
                    total_steps = _decay_from(step + 1, total_steps, config.decay_start)
                    bar.set_total(total_steps)
    seconds = time.perf_counter() - start

    # ---- package
    info = SAEInfo(
        d_in=d_in,
        d_sae=d_sae,
        architecture=config.architecture,
        hook_layer=hook_layer,
        k=config.k if config.architecture == "topk" else None,
        apply_b_dec_to_input=True,
        hook_name=hook_name or f"blocks.{hook_layer}.hook_resid_pre",
        model_name=model_name,
        source="trained by refusal_atlas.sae.train",
        source_format="refusal_atlas",
        dtype="float32",
        extras={"train_config": config.to_dict(), "n_train": n_train},
    )
    tensors = {"W_enc": W_enc.detach(), "b_enc": b_enc.detach(), "W_dec": W_dec.detach(),
               "b_dec": b_dec.detach()}
    if threshold is not None:
        tensors["threshold"] = threshold.detach()
    sae = SAE.from_tensors(info, {k: v.cpu() for k, v in tensors.items()})
    sae.fold_input_scale(scale)

    sub = keep[torch.randperm(n_train, generator=gen)[: config.eval_max_rows]]
    train_metrics = evaluate_sae(sae, activations[sub])
    eval_metrics = eval_clean = None
    if eval_activations is not None:
        if eval_activations.ndim != 2 or eval_activations.shape[1] != d_in:
            raise UserError(
                f"eval_activations must be [N, {d_in}], got {list(eval_activations.shape)}"
            )
        eval_metrics = evaluate_sae(sae, eval_activations)
        if cutoff is not None:
            clean = eval_activations[row_norms(eval_activations) <= cutoff]
            if clean.shape[0]:
                eval_clean = evaluate_sae(sae, clean)
                eval_clean["n_excluded"] = float(eval_activations.shape[0] - clean.shape[0])

    report = SAETrainReport(
        config=config.to_dict(),
        d_in=d_in,
        d_sae=d_sae,
        steps=total_steps,
        batch_size=config.batch_size,
        lr=lr,
        compute_dtype=str(cdtype).removeprefix("torch."),
        n_rows=n_rows,
        n_train=n_train,
        n_excluded_outliers=n_excluded,
        outlier_norm_cutoff=cutoff,
        input_scale=scale,
        seconds=seconds,
        seconds_per_1k_steps=seconds / total_steps * 1000,
        train_metrics=train_metrics,
        eval_metrics=eval_metrics,
        eval_metrics_without_outliers=eval_clean,
        history=history,
        planned_steps=planned_steps,
        plateau_at=plateau_at,
    )
    sae.info.extras["train_report"] = {
        "steps": total_steps,
        "plateau_at": plateau_at,
        "seconds": round(seconds, 2),
        "train_fve": train_metrics["fve"],
        "train_l0": train_metrics["l0"],
    }
    return sae, report


__all__ = ["SAETrainReport", "train_sae"]
