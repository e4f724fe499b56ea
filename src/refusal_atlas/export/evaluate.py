"""What an abliterated model is worth: first-token KL on benign prompts, RR / ORR, and
token-for-token agreement with hook-based ablation.

The first-token KL divergence ``KL(P_original || P_abliterated)`` of the distribution over
the first response token, averaged over benign prompts, is the number heretic users
compare: how much the edit disturbs the model where it should not.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Sequence

import torch

from ..chat import ChatFormatter, pad_left, position_ids_from_mask
from ..generation import generate, length_sorted_batches
from ..hooks import ablate_direction
from ..metrics.rates import condition_metrics
from ..progress import progress_bar
from .abliterate import abliterate_weights, orthonormal_basis


@torch.no_grad()
def first_token_logprobs(lm, prompts: Sequence[str], *, formatter: ChatFormatter | None = None,
                         batch_size: int = 16) -> torch.Tensor:
    """Log-probabilities of the first response token after each chat-formatted prompt.

    Args:
        lm: a :class:`~refusal_atlas.models.LoadedModel` (any active hooks apply).
        prompts: user messages.
        formatter: default: the model's chat template.
        batch_size: prompts per forward pass (speed only).

    Returns:
        ``[n_prompts, vocab]`` float32, in prompt order.

    Example:
        >>> lp = first_token_logprobs(lm, ["How do I bake bread?"])  # doctest: +SKIP
    """
    formatter = formatter or ChatFormatter(lm.tokenizer)
    encoded = [formatter.encode(p) for p in prompts]
    out: list[torch.Tensor | None] = [None] * len(prompts)
    device = lm.device
    with progress_bar("first-token log-probs", total=len(prompts), unit="prompt") as bar:
        for idx in length_sorted_batches([len(e) for e in encoded], batch_size):
            batch = pad_left([encoded[i] for i in idx], formatter.pad_id).to(device)
            logits = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              position_ids=position_ids_from_mask(batch.attention_mask),
                              use_cache=False, logits_to_keep=1).logits[:, -1, :]
            for i, row in zip(idx, torch.log_softmax(logits.float(), dim=-1).cpu()):
                out[i] = row
            bar.advance(len(idx))
    return torch.stack(out)  # type: ignore[arg-type]


def first_token_kl(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """Mean (and max) ``KL(reference || other)`` over rows of first-token log-probabilities.

    Example:
        >>> lp = torch.log_softmax(torch.randn(3, 5), -1)
        >>> first_token_kl(lp, lp)["mean"]
        0.0
    """
    p = reference.exp()
    per_row = (p * (reference - other)).sum(-1).clamp(min=0.0)
    return {"mean": float(per_row.mean()), "max": float(per_row.max()), "n_prompts": len(per_row),
            "definition": "KL(P_original || P_abliterated) of the first response token, "
                          "averaged over benign prompts"}


def refusal_rates(prompts, texts: Sequence[str], judge) -> dict:
    """RR / ORR (and accuracy, transitions) of responses to sweep prompts.

    Args:
        prompts: :class:`~refusal_atlas.sweeps.prompts.SweepPrompt` s (``harmful``, ``group``).
        texts: one response per prompt.
        judge: a refusal judge (:func:`refusal_atlas.judges.get_judge`).

    Example:
        >>> rates = refusal_rates(test_prompts, responses, ra.get_judge("substring"))  # doctest: +SKIP
    """
    verdicts = judge.judge([p.text for p in prompts], list(texts))
    rows = [{"condition": "abliterated", "harmful": p.harmful, "group": p.group,
             "refused": j.refused, "parse_error": bool(j.parse_error or j.refused is None)}
            for p, j in zip(prompts, verdicts)]
    metrics = condition_metrics(rows)["abliterated"]
    return {k: metrics[k] for k in ("rr", "orr", "accuracy", "n", "n_harmful", "n_benign",
                                    "transitions") if k in metrics}


def _hook_ablation(model, basis: torch.Tensor) -> ExitStack:
    """Hook ablation of every basis row (orthonormal rows: projecting each in turn projects
    out their span)."""
    stack = ExitStack()
    for row in basis:
        stack.enter_context(ablate_direction(model, row))
    return stack


def abliterate_model(lm, vectors: Sequence[torch.Tensor], *, benign_prompts: Sequence[str],
                     test_prompts=None, judge=None, max_new_tokens: int = 64,
                     batch_size: int = 16, formatter: ChatFormatter | None = None) -> dict:
    """Abliterate ``lm`` in place and measure it against the original.

    Before the weights change: first-token log-probabilities on ``benign_prompts`` and,
    with ``test_prompts``, greedy responses under hook ablation of the same span. After:
    the same on the abliterated weights. Returns the record saved beside the model.

    Args:
        lm: a :class:`~refusal_atlas.models.LoadedModel` (fp32 for token-exact agreement).
        vectors: the directions; their orthonormalised span is projected out.
        benign_prompts: prompts for the first-token KL.
        test_prompts: sweep prompts (e.g. the controlled test set) for RR / ORR and the
            token-for-token check against hook ablation; None skips both.
        judge: judges ``test_prompts`` responses; None records no RR / ORR.
        max_new_tokens, batch_size: generation budget and batch size.
        formatter: default: the model's chat template.

    Example:
        >>> record = abliterate_model(lm, [d.vector], benign_prompts=benign)  # doctest: +SKIP
        >>> record["kl_first_token"]["mean"]  # doctest: +SKIP
    """
    formatter = formatter or ChatFormatter(lm.tokenizer)
    basis = orthonormal_basis(list(vectors))
    before = first_token_logprobs(lm, benign_prompts, formatter=formatter, batch_size=batch_size)
    texts = [p.text for p in test_prompts or []]
    hooked = None
    if texts:
        with _hook_ablation(lm.model, basis):
            hooked = generate(lm, texts, formatter=formatter, max_new_tokens=max_new_tokens,
                              batch_size=batch_size, description="hook ablation")
    changed = abliterate_weights(lm.model, basis)
    after = first_token_logprobs(lm, benign_prompts, formatter=formatter, batch_size=batch_size)
    record = {"basis_rank": int(basis.shape[0]), "weights": changed,
              "dtype": str(lm.dtype).replace("torch.", ""),
              "kl_first_token": first_token_kl(before, after)}
    if hooked is not None:
        result = generate(lm, texts, formatter=formatter, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, description="abliterated")
        same = [a == b for a, b in zip(result.token_ids, hooked.token_ids)]
        record["hook_agreement"] = {
            "identical_responses": sum(same), "n_prompts": len(same),
            "definition": "greedy responses of the abliterated weights equal to hook ablation "
                          "of the same span on the original weights, token for token"}
        if judge is not None:
            record["rates"] = refusal_rates(test_prompts, result.texts, judge)
            record["judge"] = getattr(judge, "name", type(judge).__name__)
    return record
