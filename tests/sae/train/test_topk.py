"""The hand-written TopK step (sparse backward) against autograd on the same loss."""

import pytest
import torch

from refusal_atlas.sae.train.config import SAETrainConfig
from refusal_atlas.sae.train.topk import TopKTrainer


def _params(d, n, seed):
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(n, d, generator=g)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    return [W_dec.T.clone().contiguous() + 0.1 * torch.randn(d, n, generator=g),
            0.1 * torch.randn(n, generator=g), W_dec, 0.1 * torch.randn(d, generator=g)]


def _autograd_grads(params, x, k, dead, aux_k, aux_coeff):
    W_enc, b_enc, W_dec, b_dec = (p.clone().requires_grad_() for p in params)
    pre = (x - b_dec) @ W_enc + b_enc
    vals, idx = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
    x_hat = f @ W_dec + b_dec
    loss = (x_hat - x).pow(2).sum(-1).mean()
    if dead.any():
        # AuxK (Gao et al.): the dead latents' top aux_k reconstruct the detached residual
        D = dead.nonzero().squeeze(1)
        vals_a, idx_a = pre[:, D].topk(min(aux_k, D.numel()), dim=-1)
        f_a = torch.zeros(x.shape[0], D.numel()).scatter(1, idx_a, torch.relu(vals_a))
        e = (x - x_hat).detach()
        denom = (e - e.mean(0)).pow(2).sum(-1).mean()
        loss = loss + aux_coeff * ((f_a @ W_dec[D] - e).pow(2).sum(-1).mean() / denom)
    loss.backward()
    return [p.grad for p in (W_enc, b_enc, W_dec, b_dec)]


@pytest.mark.parametrize("n_dead", [0, 9])
def test_step_grads_equal_autograd(n_dead):
    d, n, k, B = 24, 96, 5, 40
    params = _params(d, n, seed=n_dead)
    x = torch.randn(B, d, generator=torch.Generator().manual_seed(7))
    config = SAETrainConfig(k=k, aux_k=6)
    trainer = TopKTrainer(*[torch.nn.Parameter(p.clone()) for p in params], config,
                          torch.float32)
    dead = torch.zeros(n, dtype=torch.bool)
    dead[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:n_dead]] = True
    trainer.since_fired[dead] = config.dead_after_tokens
    stats = trainer.step(x)
    expected = _autograd_grads(params, x, k, dead, 6, config.aux_coeff)
    got = [trainer.W_enc.grad, trainer.b_enc.grad, trainer.W_dec.grad, trainer.b_dec.grad]
    for name, g, e in zip(("W_enc", "b_enc", "W_dec", "b_dec"), got, expected):
        assert g.shape == e.shape and g.is_contiguous(), name
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5, msg=name)
    assert (stats["aux"] > 0) == (n_dead > 0)
    assert stats["dead_fraction"] == pytest.approx(n_dead / n)


def test_repeated_steps_reuse_the_encoder_grad_buffer_without_leaking():
    # the W_enc grad lives in a kept buffer: a second step must overwrite, not accumulate
    d, n, k = 16, 48, 4
    params = _params(d, n, seed=3)
    trainer = TopKTrainer(*[torch.nn.Parameter(p.clone()) for p in params],
                          SAETrainConfig(k=k), torch.float32)
    x = torch.randn(32, d, generator=torch.Generator().manual_seed(5))
    trainer.step(x)
    first = trainer.W_enc.grad.clone()
    trainer.W_enc.grad = None
    trainer.step(x)
    torch.testing.assert_close(trainer.W_enc.grad, first)
