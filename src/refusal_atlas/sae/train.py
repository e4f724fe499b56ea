"""Train an SAE on an in-memory activation tensor (for models without published SAEs).

Why not SAELens' trainer: it drives a TransformerLens model and an activation store
(``sae-lens`` pulls in ``transformer-lens``, plotly, wandb ...); there is no simple entry
point that takes a plain ``[N, d_in]`` tensor. This compact trainer does, and is built to
be fast on a CPU.

Recipe (Gao et al. 2024 "Scaling and evaluating sparse autoencoders" for TopK, the
defaults of SAELens / dictionary_learning otherwise):

* **Input scaling.** Activations are multiplied by ``s = sqrt(d_in / E||x||^2)`` so their
  mean squared norm is ``d_in``, which makes learning rates and thresholds transferable
  across models and layers. After training ``s`` is folded into the weights
  (:meth:`SAE.fold_input_scale`: ``W_enc *= s``, ``W_dec /= s``, ``b_dec /= s``), so the
  returned SAE encodes raw activations; ``info.extras["input_scale"]`` records ``s``.
* **Norm outliers.** Attention-sink positions (the first token, some special tokens) have
  residual norms one to two orders of magnitude above the rest. Rows whose norm exceeds
  ``exclude_norm_outliers`` x the median norm are dropped from training (and from the
  scale estimate); the report counts them. Set it to None to keep them.
* **Initialisation.** ``W_dec`` rows are random unit vectors, ``W_enc = W_dec^T``,
  ``b_enc = 0`` and ``b_dec`` = the geometric median (or the mean) of the training data.
  ``b_dec`` is subtracted from the input before encoding (``apply_b_dec_to_input``).
* **TopK** (default): ``f = relu(topk(pre, k))``; loss ``||x - x_hat||^2`` plus the AuxK
  loss (``aux_coeff`` x the normalised error of reconstructing the residual with the
  ``aux_k`` most active *dead* latents; a latent is dead after ``dead_after_tokens``
  tokens without firing). Decoder rows are kept at unit norm (the gradient component
  parallel to each row is removed before the step, rows are renormalised after it).
  Forward and backward are written by hand around three bf16 matrix products (the top-k
  makes the rest sparse), about 3x faster than autograd on a CPU.
* **JumpReLU**: ``f = pre * (pre > threshold)`` with straight-through estimators of
  bandwidth ``jumprelu_bandwidth`` for the threshold gradient (Rajamanoharan et al. 2024),
  loss ``||x - x_hat||^2 + l0_coeff * L0`` (``l0_coeff`` ramps up linearly over the first
  ``l0_warmup`` of training), unit-norm decoder rows, thresholds kept >= 0. Thresholds
  start at per-latent quantiles of the initial pre-activations chosen so the initial L0 is
  ``jumprelu_init_l0`` (Adam moves a threshold by about ``lr`` per step, far too slowly to
  climb from ~0 in a short CPU run). The final L0 is set by ``l0_coeff``, not by ``k``.
  Dense and slower than TopK; use it when a JumpReLU SAE (like Gemma Scope) is wanted.
* Adam (fused), linear warm-up over ``warmup`` of the steps, constant, then linear decay
  to 0 over the last ``1 - decay_start`` of the steps; shuffled mini-batches from the
  in-memory tensor, reshuffled every epoch; everything seeded by ``seed``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..progress import progress_bar
from .models import SAE, SAEInfo

TrainArchitecture = Literal["topk", "jumprelu"]


@dataclass
class SAETrainConfig:
    """Settings of :func:`train_sae` (all have working defaults).

    ``steps`` wins over ``epochs`` when both are given. ``lr=None`` picks
    ``4e-4 * sqrt(2**14 / d_sae)`` (the 1/sqrt(d_sae) scaling of Gao et al., at twice
    dictionary_learning's constant because runs here are short).
    """

    architecture: TrainArchitecture = "topk"
    expansion: int = 8
    d_sae: int | None = None  # overrides expansion
    k: int = 32
    lr: float | None = None
    batch_size: int = 1024
    steps: int | None = None
    epochs: float = 3.0
    warmup: float = 0.05  # fraction of steps
    decay_start: float = 0.8  # fraction of steps after which the lr decays linearly to 0
    seed: int = 0
    b_dec_init: Literal["geometric_median", "mean", "zeros"] = "geometric_median"
    normalize_inputs: bool = True
    exclude_norm_outliers: float | None = 10.0  # x median norm; None keeps every row
    # TopK: AuxK dead-latent loss
    aux_coeff: float = 1 / 32
    aux_k: int | None = None  # None: d_in // 2
    dead_after_tokens: int = 50_000
    # JumpReLU
    l0_coeff: float = 2.0
    l0_warmup: float = 0.1  # fraction of steps over which l0_coeff ramps up from 0
    jumprelu_bandwidth: float = 0.05
    jumprelu_init_l0: float = 128.0  # initial thresholds: per-latent quantiles giving this L0
    jumprelu_init_threshold: float | None = None  # a constant initial threshold instead
    # optimisation details
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    device: str = "cpu"
    num_threads: int | None = None  # torch CPU threads while training (None: unchanged)
    log_every: int = 25
    eval_max_rows: int = 16_384  # rows of the training set used for the final train metrics

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists), so it survives a JSON round trip."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- utilities
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


def norm_outlier_mask(activations: torch.Tensor, factor: float | None) -> torch.Tensor:
    """True for rows whose L2 norm exceeds ``factor`` x the median row norm.

    These are attention-sink positions (first token, some special tokens); all False when
    ``factor`` is None.
    """
    if activations.ndim != 2:
        raise UserError(f"activations must be a 2-D tensor [N, d_in], got {list(activations.shape)}")
    if factor is None:
        return torch.zeros(activations.shape[0], dtype=torch.bool, device=activations.device)
    norms = _row_norms(activations)
    return norms > factor * norms.median()


def _row_norms(x: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
    return torch.cat([x[i:i + chunk].float().norm(dim=-1) for i in range(0, x.shape[0], chunk)])


@torch.no_grad()
def geometric_median(points: torch.Tensor, max_iter: int = 50, tol: float = 1e-5) -> torch.Tensor:
    """Weiszfeld iterations from the mean (the b_dec initialisation of Gao et al.)."""
    points = points.float()
    guess = points.mean(dim=0)
    for _ in range(max_iter):
        prev = guess
        weights = 1 / (points - guess).norm(dim=1).clamp_min(1e-8)
        weights = weights / weights.sum()
        guess = (weights[:, None] * points).sum(dim=0)
        if (guess - prev).norm() < tol * max(1.0, float(prev.norm())):
            break
    return guess


def _lr_factor(step: int, total: int, warmup: float, decay_start: float) -> float:
    warm = max(1, round(warmup * total))
    if step < warm:
        return (step + 1) / warm
    start = int(decay_start * total)
    if step >= start and total > start:
        return max(0.0, (total - step) / (total - start))
    return 1.0


def _set_description(bar: Any, text: str) -> None:
    """Show running metrics in the progress bar's description, when it is a live bar."""
    progress, task_id = getattr(bar, "_progress", None), getattr(bar, "_task_id", None)
    if progress is not None and task_id is not None:
        progress.update(task_id, description=text)


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_sae(sae: SAE, activations: torch.Tensor, *, batch_size: int = 2048) -> dict[str, float]:
    """Reconstruction quality of ``sae`` on ``activations`` [N, d_in] (raw, unscaled).

    Returns ``fve`` = 1 - sum||x - x_hat||^2 / sum||x - mean(x)||^2 (mean over this set),
    ``mse`` = sum||x - x_hat||^2 / (N * d_in) (per element), ``l0`` = mean number of
    active latents per row, ``dead_fraction`` = share of latents that never fire on this
    set, and ``n`` = number of rows.
    """
    if activations.ndim != 2 or activations.shape[1] != sae.d_in:
        raise UserError(
            f"evaluation activations must be [N, {sae.d_in}], got {list(activations.shape)}"
        )
    n = activations.shape[0]
    if n == 0:
        raise UserError("cannot evaluate an SAE on zero activations")
    was_training = sae.training
    sae.eval()
    sq_err = 0.0
    sum_sq = 0.0
    total = torch.zeros(sae.d_in, dtype=torch.float64)
    active = 0.0
    fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=sae.device)
    for i in range(0, n, batch_size):
        x = activations[i:i + batch_size].to(device=sae.device, dtype=sae.dtype)
        f = sae.encode(x)
        x_hat = sae.decode(f)
        sq_err += float((x - x_hat).double().pow(2).sum())
        xd = x.double()
        sum_sq += float(xd.pow(2).sum())
        total += xd.sum(dim=0).cpu()
        nz = f != 0
        active += float(nz.sum())
        fired |= nz.any(dim=0)
    sae.train(was_training)
    centred = sum_sq - float(total.pow(2).sum()) / n
    fve = 1.0 - sq_err / centred if centred > 0 else float("nan")
    return {
        "fve": fve,
        "mse": sq_err / (n * sae.d_in),
        "l0": active / n,
        "dead_fraction": 1.0 - float(fired.float().mean()),
        "n": float(n),
    }


# ---------------------------------------------------------------------------- TopK step
class _TopKTrainer:
    """Hand-written forward/backward of a TopK SAE with AuxK (see module docstring)."""

    def __init__(self, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor,
                 b_dec: torch.Tensor, config: SAETrainConfig, cdtype: torch.dtype):
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = W_enc, b_enc, W_dec, b_dec
        self.k = config.k
        self.cdtype = cdtype
        self.aux_coeff = config.aux_coeff
        d_in, d_sae = W_enc.shape
        self.aux_k = config.aux_k if config.aux_k is not None else max(1, d_in // 2)
        self.dead_after = config.dead_after_tokens
        self.since_fired = torch.zeros(d_sae, dtype=torch.long, device=W_enc.device)
        self._A: torch.Tensor | None = None
        self._G: torch.Tensor | None = None

    def dead_mask(self) -> torch.Tensor:
        return self.since_fired >= self.dead_after

    def _buffers(self, B: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Two all-zero [B, n] matrices, reused across steps (re-zeroed where written)."""
        if self._A is None or self._A.shape != (B, n):
            self._A = torch.zeros(B, n, dtype=self.cdtype, device=device)
            self._G = torch.zeros(B, n, dtype=self.cdtype, device=device)
        assert self._G is not None
        return self._A, self._G

    def step(self, x: torch.Tensor) -> dict[str, float]:
        """Set ``.grad`` of the four parameters for batch ``x`` (scaled, fp32)."""
        W_enc, b_enc, W_dec, b_dec = self.W_enc, self.b_enc, self.W_dec, self.b_dec
        cd = self.cdtype
        B = x.shape[0]
        n = W_enc.shape[1]
        with torch.no_grad():
            xc = x - b_dec
            xc_c = xc.to(cd)
            pre = torch.addmm(b_enc.to(cd), xc_c, W_enc.to(cd))  # [B, n]
            vals, idx = pre.topk(self.k, dim=-1, sorted=False)
            acts = torch.relu(vals.float())
            x_hat = F.embedding_bag(idx, W_dec, per_sample_weights=acts, mode="sum") + b_dec
            err = x_hat - x
            mse = err.pow(2).sum(dim=-1).mean()
            g = (2.0 / B) * err  # d loss / d x_hat
            g_c = g.to(cd)
            # d loss / d acts at the selected latents: <g_b, W_dec[idx_bj]>
            g_acts = torch.mm(g_c, W_dec.to(cd).T).gather(1, idx).float()
            g_pre_vals = g_acts * (acts > 0)
            # sparse [B, n] matrices (acts, pre-activation grads) for the weight gradients
            A, G = self._buffers(B, n, x.device)
            A.scatter_(1, idx, acts.to(cd))
            G.scatter_(1, idx, g_pre_vals.to(cd))
            grad_b_enc = torch.zeros(n, device=x.device).index_add_(
                0, idx.reshape(-1), g_pre_vals.reshape(-1)
            )

            aux = 0.0
            dead = self.dead_mask()
            n_dead = int(dead.sum())
            aux_rows: tuple[torch.Tensor, torch.Tensor] | None = None
            aux_idx = None
            if self.aux_coeff > 0 and n_dead > 0:
                D = dead.nonzero().squeeze(1)
                k_aux = min(self.aux_k, n_dead)
                vals_a, idx_a = pre[:, D].topk(k_aux, dim=-1, sorted=False)
                acts_a = torch.relu(vals_a.float())
                A_aux = torch.zeros(B, D.numel(), dtype=cd, device=x.device)
                A_aux.scatter_(1, idx_a, acts_a.to(cd))
                WdD_c = W_dec[D].to(cd)
                e = -err  # the residual x - x_hat
                e_hat = torch.mm(A_aux, WdD_c).float()
                denom = (e - e.mean(dim=0)).pow(2).sum(dim=-1).mean().clamp_min(1e-12)
                diff = e_hat - e
                aux = float(diff.pow(2).sum(dim=-1).mean() / denom)
                g_aux_c = ((2.0 * self.aux_coeff / (B * denom)) * diff).to(cd)
                aux_rows = (D, torch.mm(A_aux.T, g_aux_c).float())
                g_acts_a = torch.mm(g_aux_c, WdD_c.T).float().gather(1, idx_a) * (acts_a > 0)
                aux_idx = D[idx_a]
                G.scatter_add_(1, aux_idx, g_acts_a.to(cd))
                grad_b_enc.index_add_(0, aux_idx.reshape(-1), g_acts_a.reshape(-1))

            W_enc.grad = torch.mm(xc_c.T, G).float()
            b_enc.grad = grad_b_enc
            W_dec.grad = torch.mm(A.T, g_c).float()
            if aux_rows is not None:
                W_dec.grad.index_add_(0, aux_rows[0], aux_rows[1])
            # b_dec: decoder side (+g) and encoder side (pre depends on -b_dec @ W_enc)
            b_dec.grad = g.sum(dim=0) - W_enc @ grad_b_enc

            # leave the buffers all-zero for the next step
            A.scatter_(1, idx, 0.0)
            G.scatter_(1, idx, 0.0)
            if aux_idx is not None:
                G.scatter_(1, aux_idx, 0.0)

            # dead-latent bookkeeping
            self.since_fired += B
            self.since_fired[idx[acts > 0]] = 0

            centred = x.pow(2).sum() / B - x.mean(dim=0).pow(2).sum()
            fve = 1.0 - float(mse) / float(centred) if float(centred) > 0 else float("nan")
        return {
            "loss": float(mse) + self.aux_coeff * aux,
            "mse": float(mse),
            "aux": aux,
            "fve": fve,
            "dead_fraction": n_dead / n,
        }


# ---------------------------------------------------------------------------- JumpReLU
def _rectangle(x: torch.Tensor) -> torch.Tensor:
    return ((x > -0.5) & (x < 0.5)).to(x.dtype)


class _JumpReLUFn(torch.autograd.Function):
    """``pre * (pre > thr)``; threshold gradient by a rectangle-kernel STE."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, thr: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(pre, thr)
        ctx.bandwidth = bandwidth
        return pre * (pre > thr)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        pre, thr = ctx.saved_tensors
        bw = ctx.bandwidth
        g_pre = (pre > thr).to(grad.dtype) * grad
        g_thr = (-(thr / bw) * _rectangle((pre - thr) / bw) * grad).sum(dim=0)
        return g_pre, g_thr, None


class _StepFn(torch.autograd.Function):
    """Heaviside ``pre > thr`` (for the L0 count); gradient only to the threshold."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, thr: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(pre, thr)
        ctx.bandwidth = bandwidth
        return (pre > thr).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        pre, thr = ctx.saved_tensors
        bw = ctx.bandwidth
        g_thr = (-(1.0 / bw) * _rectangle((pre - thr) / bw) * grad).sum(dim=0)
        return None, g_thr, None


class _JumpReLUTrainer:
    def __init__(self, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor,
                 b_dec: torch.Tensor, threshold: torch.Tensor, config: SAETrainConfig,
                 cdtype: torch.dtype):
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = W_enc, b_enc, W_dec, b_dec
        self.threshold = threshold
        self.bandwidth = config.jumprelu_bandwidth
        self.cdtype = cdtype
        self.since_fired = torch.zeros(W_enc.shape[1], dtype=torch.long, device=W_enc.device)
        self.dead_after = config.dead_after_tokens

    def step(self, x: torch.Tensor, l0_coeff: float) -> dict[str, float]:
        params = (self.W_enc, self.b_enc, self.W_dec, self.b_dec, self.threshold)
        for p in params:
            p.grad = None
        use_autocast = self.cdtype != torch.float32
        with torch.autocast(x.device.type, dtype=self.cdtype, enabled=use_autocast):
            pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        pre = pre.float()
        f = _JumpReLUFn.apply(pre, self.threshold, self.bandwidth)
        with torch.autocast(x.device.type, dtype=self.cdtype, enabled=use_autocast):
            x_hat = f @ self.W_dec + self.b_dec
        err = x_hat.float() - x
        mse = err.pow(2).sum(dim=-1).mean()
        l0 = _StepFn.apply(pre, self.threshold, self.bandwidth).sum(dim=-1).mean()
        loss = mse + l0_coeff * l0
        loss.backward()
        loss, mse, l0 = loss.detach(), mse.detach(), l0.detach()
        with torch.no_grad():
            fired = (f != 0).any(dim=0)
            self.since_fired += x.shape[0]
            self.since_fired[fired] = 0
            var = (x - x.mean(dim=0)).pow(2).sum(dim=-1).mean()
        return {
            "loss": float(loss),
            "mse": float(mse),
            "l0": float(l0),
            "fve": 1.0 - float(mse) / float(var) if float(var) > 0 else float("nan"),
            "dead_fraction": float((self.since_fired >= self.dead_after).float().mean()),
        }


# ---------------------------------------------------------------------------- train_sae
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
    norms_all = _row_norms(activations)
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
        trainer: _TopKTrainer | _JumpReLUTrainer = _JumpReLUTrainer(
            W_enc, b_enc, W_dec, b_dec, threshold, config, cdtype
        )
    else:
        trainer = _TopKTrainer(W_enc, b_enc, W_dec, b_dec, config, cdtype)

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
    with progress_bar(description, total=total_steps, unit="step") as bar:
        for step in range(total_steps):
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
            if isinstance(trainer, _JumpReLUTrainer):
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
            clean = eval_activations[_row_norms(eval_activations) <= cutoff]
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
    )
    sae.info.extras["train_report"] = {
        "steps": total_steps,
        "seconds": round(seconds, 2),
        "train_fve": train_metrics["fve"],
        "train_l0": train_metrics["l0"],
    }
    return sae, report


__all__ = [
    "SAETrainConfig",
    "SAETrainReport",
    "evaluate_sae",
    "geometric_median",
    "norm_outlier_mask",
    "train_sae",
]
