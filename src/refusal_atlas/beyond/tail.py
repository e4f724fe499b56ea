"""Tail latents: do a split's own SAE latents (its long tail) change how the model refuses
rather than how often (issue 14, experiment 3)?

Two interventions per split, judged as in experiment 1 (:mod:`.style_rate`):

* **tail steering**: steer with the sum of the split's tail latents' decoder rows,
  unit-normalised, against the shared core's (unit) sum at the same alpha: matched norms;
* **tail removal**: at the SAE's layer subtract ``sum_i f_i(x) W_dec[i]`` over the tail
  latents from the residual stream (:class:`LatentRemoval`). Only those decoder terms go:
  the core latents' terms, every other latent's and the SAE's error term stay. Compared
  with the unsteered baseline.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

import torch

from ..sae.steering import CORE_NAME, build_sae_bank, latent_name
from ..sweeps import LayerVector, format_alpha
from .findings import Finding
from .style_rate import style_without_rate, verdict_finding

QUESTION_STEER = ("Does steering with the split's tail latents change how the model refuses "
                  "(styles, against the shared core's steering) without changing how often "
                  "(RR against the baseline)?")
QUESTION_REMOVE = ("Does removing the split's tail latents' contribution (core and SAE error "
                   "kept) change how the model refuses (styles, against the baseline) without "
                   "changing how often (RR against the baseline)?")


def removal_name(split: str) -> str:
    """The edit condition's name for removing a split's tail (names cannot hold '/')."""
    return f"sae_notail:{split}"


class LatentRemoval:
    """``x -> x - sum_{i in latents} f_i(x) W_dec[i]``: remove some SAE latents' decoder
    terms from a hidden state, position by position, keeping everything else (the other
    latents' terms, ``b_dec`` and the SAE's error ``x - x_hat``).

    Computed in float32 and cast back to the hidden state's dtype.

    Example:
        >>> remove = LatentRemoval(sae, [3, 17])  # doctest: +SKIP
        >>> with hooks.edit_resid_pre(model, sae.hook_layer, remove):  # doctest: +SKIP
        ...     model(input_ids)
    """

    def __init__(self, sae, latents: Sequence[int]):
        if not latents:
            raise ValueError("no latents to remove")
        self.sae = sae
        self.latents = [int(i) for i in latents]
        self._index = torch.as_tensor(self.latents, dtype=torch.long)
        self._decoder = sae.W_dec.detach().float()[self._index]

    def contribution(self, hidden: torch.Tensor) -> torch.Tensor:
        """``sum_i f_i(x) W_dec[i]`` over the latents, ``[..., d]`` float32 on the SAE's device."""
        with torch.no_grad():
            f = self.sae.encode(hidden)
            return f.float()[..., self._index.to(f.device)] @ self._decoder.to(f.device)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        delta = self.contribution(hidden).to(hidden.device)
        return (hidden.float() - delta).to(hidden.dtype)

    def __repr__(self) -> str:
        return f"LatentRemoval({len(self.latents)} latents)"


def tail_bank(sae, analysis, splits: Sequence[str], layer: int
              ) -> tuple[dict[str, LayerVector], list[dict[str, Any]], list[str], list[str]]:
    """``(vectors, described, warnings, splits with a tail)``: the unit core and tail latent
    sums (as ``sae_steering`` builds them) and one removal per split with a tail
    (:func:`removal_name`; its vector is the raw tail sum, for the record)."""
    bank, described, warnings = build_sae_bank(sae, analysis, sets=["core", "tail"],
                                               splits=splits, topk=1, normalize=True,
                                               layer=layer)
    with_tail = [s for s in splits if latent_name("tail", s) in bank]
    for split in with_tail:
        latents = bank[latent_name("tail", split)].meta["latents"]
        raw = sae.W_dec.detach().float()[latents].sum(0)
        bank[removal_name(split)] = LayerVector(raw, layer, source="sae",
                                                meta={"latents": latents, "removal": True},
                                                edit=LatentRemoval(sae, latents))
    return bank, described, warnings, with_tail


def tail_findings(table: Mapping[str, Mapping[str, Any]], splits: Sequence[str], alpha: float,
                  *, min_refusals: int = 5, n_perm: int = 1000, seed: int = 0,
                  experiment: str = "tail_latents") -> list[Finding]:
    """Per split, "style without rate" for tail steering (styles against core steering at
    ``alpha``) and for tail removal (styles against the baseline); one summary finding."""
    def steer_id(name: str) -> str:
        return f"vector/{name}/a={format_alpha(alpha)}"

    findings = []
    for split in splits:
        steer = style_without_rate(table, steer_id(latent_name("tail", split)),
                                   steer_id(CORE_NAME), "baseline", min_refusals=min_refusals,
                                   n_perm=n_perm, seed=seed)
        findings.append(verdict_finding(experiment, QUESTION_STEER, f"{split} (tail steering)",
                                        steer, alpha=alpha, split=split, test="tail steering"))
        removal = style_without_rate(table, f"edit/{removal_name(split)}", "baseline",
                                     "baseline", min_refusals=min_refusals, n_perm=n_perm,
                                     seed=seed)
        findings.append(verdict_finding(experiment, QUESTION_REMOVE, f"{split} (tail removed)",
                                        removal, split=split, test="tail removal"))
    counts = Counter(f.verdict for f in findings)
    decidable = [f for f in findings if f.supported is not None]
    n_yes = sum(bool(f.supported) for f in findings)
    findings.append(Finding(
        experiment, "Do the tail latents carry the style of refusal rather than its rate?",
        measured=(f"style without rate in {n_yes} of {len(findings)} tests over "
                  f"{len(splits)} splits ({len(findings) - len(decidable)} not decidable); "
                  f"verdicts: {dict(counts)}"),
        criterion="supported when most decidable tests show style without rate",
        verdict=f"style without rate in {n_yes} of {len(findings)} tests",
        supported=None if not decidable else n_yes > len(decidable) / 2,
        subject="summary", details={"alpha": alpha, "counts": dict(counts),
                                    "splits": list(splits)}))
    return findings


__all__ = ["LatentRemoval", "QUESTION_REMOVE", "QUESTION_STEER", "removal_name", "tail_bank",
           "tail_findings"]
