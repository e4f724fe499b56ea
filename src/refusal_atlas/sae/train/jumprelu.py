"""One JumpReLU training step: straight-through estimators for the thresholds.

Rajamanoharan et al. 2024: a rectangle kernel of width ``jumprelu_bandwidth`` gives the
threshold its gradient, both through the activation and through the L0 count.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import SAETrainConfig


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


class JumpReLUTrainer:
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

