"""How well an SAE reconstructs activations: FVE, MSE, L0 and dead latents."""

from __future__ import annotations

import torch

from ...errors import UserError
from ..models import SAE


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

