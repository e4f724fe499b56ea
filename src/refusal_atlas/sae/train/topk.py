"""One TopK training step with AuxK, forward and backward written by hand.

The top-k makes all but three matrix products sparse; doing them in bf16 by hand is about
3x faster than autograd on a CPU (see :mod:`refusal_atlas.sae.train`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import SAETrainConfig


class TopKTrainer:
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

