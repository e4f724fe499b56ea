"""Synthetic latent activations with a planted core and tail (shared by the SAE tests).

Rows: 4 HR prompts of each split A, B, C (rows 0-3, 4-7, 8-11) and 4 BC prompts shared by
all splits (rows 12-15). Planted latents (fires on ... -> scores A / B / C):

    0: every HR row                         -> 1 / 1 / 1          (the core)
    1: A, B HR; 2 of C's HR; 1 BC row       -> .75 / .75 / .25    (shared by A and B)
    2: A's HR                               -> 1 / 0 / 0          (A's tail)
    3: 3 of B's HR; 1 BC row                -> -.25 / .5 / -.25   (B's tail)
    4: every row                            -> 0 / 0 / 0          (never in a top-K)
    5: BC rows only                         -> -1 / -1 / -1
    6: 3 of C's HR; 1 BC row                -> C .5 (HR share .75)
    7: 2 of C's HR                          -> C .5 (HR share .5: ranked after 6)
    8, 9: 1 of C's HR each                  -> C .25, exact tie: ranked by index
"""

from __future__ import annotations

import torch

from refusal_atlas.sae.analysis import LatentAnalysis, PromptInfo, analyze_latents

A, B, C, BC = range(0, 4), range(4, 8), range(8, 12), range(12, 16)
FIRES = {
    0: [*A, *B, *C],
    1: [*A, *B, 8, 9, 12],
    2: [*A],
    3: [4, 5, 6, 13],
    4: list(range(16)),
    5: [*BC],
    6: [8, 9, 10, 14],
    7: [8, 9],
    8: [10],
    9: [11],
}
D_SAE = 12


def planted_latents() -> torch.Tensor:
    f = torch.zeros(16, D_SAE)
    for j, rows in FIRES.items():
        for r in rows:
            f[r, j] = 1.0 + r / 10  # later rows fire harder: known top-activating order
    return f


def planted_prompts() -> list[PromptInfo]:
    out = []
    for r in range(16):
        split = "ABC"[r // 4] if r < 12 else "benign"
        out.append(PromptInfo(f"p{r}", split, "HR" if r < 12 else "BC", f"prompt number {r}"))
    return out


SPLIT_ROWS = {"A": (list(A), list(BC)), "B": (list(B), list(BC)), "C": (list(C), list(BC))}


def planted_analysis() -> LatentAnalysis:
    """The analysis of the planted latents that the text and figure tests use."""
    return analyze_latents(planted_latents(), planted_prompts(), SPLIT_ROWS, ks=[3, 2],
                           examples_k=2, examples_n=3,
                           neuronpedia_url=lambda j: f"https://np/{j}")
