"""Statistics of the training rows: norm outliers and the geometric median (b_dec init)."""

from __future__ import annotations

import torch

from ...errors import UserError


def norm_outlier_mask(activations: torch.Tensor, factor: float | None) -> torch.Tensor:
    """True for rows whose L2 norm exceeds ``factor`` x the median row norm.

    These are attention-sink positions (first token, some special tokens); all False when
    ``factor`` is None.
    """
    if activations.ndim != 2:
        raise UserError(f"activations must be a 2-D tensor [N, d_in], got {list(activations.shape)}")
    if factor is None:
        return torch.zeros(activations.shape[0], dtype=torch.bool, device=activations.device)
    norms = row_norms(activations)
    return norms > factor * norms.median()


def row_norms(x: torch.Tensor, chunk: int = 65_536) -> torch.Tensor:
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

