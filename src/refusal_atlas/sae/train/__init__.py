"""Train an SAE on an in-memory activation tensor (for models without published SAEs).

Modules: :mod:`.config` (settings), :mod:`.loop` (:func:`train_sae`), :mod:`.topk` and
:mod:`.jumprelu` (one training step each), :mod:`.evaluate`, :mod:`.data` (row statistics).

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
  Forward and backward are written by hand, about 3x faster than autograd on a CPU; the
  encoder is the one dense (bf16) product, and the top-k makes decoding and the backward
  products sparse (fp32 CSR), which halves a step again (90 -> 48 ms at 896 x 3584,
  batch 1024, on a 2-core AMD EPYC).
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

from ..._lazy import lazy_exports

# name -> module that defines it; imported on first use, so that the run config can import
# SAETrainConfig (its ``sae.train`` section) without importing torch
_API = {
    "SAETrainConfig": "config", "TrainArchitecture": "config",
    "geometric_median": "data", "norm_outlier_mask": "data", "evaluate_sae": "evaluate",
    "SAETrainReport": "loop", "train_sae": "loop",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
