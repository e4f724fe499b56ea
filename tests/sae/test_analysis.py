"""Latent analysis on synthetic latent activations with a planted core and tail.

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

import json

import pytest
import torch

from refusal_atlas.errors import UserError
from refusal_atlas.sae.analysis import (
    LatentAnalysis,
    PromptInfo,
    analyze_latents,
    core_and_tail,
    default_core_min_splits,
    intersections,
    latent_scores,
    latents_markdown,
    plot_core_scores,
    plot_overlap,
    plot_popularity,
    popularity,
    rank_latents,
    top_activating,
)

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


def _latents() -> torch.Tensor:
    f = torch.zeros(16, D_SAE)
    for j, rows in FIRES.items():
        for r in rows:
            f[r, j] = 1.0 + r / 10  # later rows fire harder: known top-activating order
    return f


def _prompts() -> list[PromptInfo]:
    out = []
    for r in range(16):
        split = "ABC"[r // 4] if r < 12 else "benign"
        out.append(PromptInfo(f"p{r}", split, "HR" if r < 12 else "BC", f"prompt number {r}"))
    return out


SPLIT_ROWS = {"A": (list(A), list(BC)), "B": (list(B), list(BC)), "C": (list(C), list(BC))}


def test_scores_are_hr_minus_bc_firing_shares():
    f = _latents()
    s = latent_scores(f[list(C)], f[list(BC)], "C")
    assert s.n_hr == 4 and s.n_bc == 4
    expected = {0: 1.0, 1: 0.25, 2: 0.0, 3: -0.25, 4: 0.0, 5: -1.0, 6: 0.5, 7: 0.5, 8: 0.25,
                9: 0.25, 10: 0.0}
    for j, value in expected.items():
        assert float(s.score[j]) == pytest.approx(value), j
    assert float(s.hr_frac[6]) == 0.75 and float(s.bc_frac[6]) == 0.25


def test_ranking_breaks_ties_by_hr_share_then_index():
    f = _latents()
    ranked = {}
    for split, (hr, bc) in SPLIT_ROWS.items():
        s = latent_scores(f[hr], f[bc], split)
        ranked[split] = rank_latents(s.score, s.hr_frac)
    assert ranked["A"] == [0, 2, 1]  # 0 and 2 tie (score 1, HR share 1): index order
    assert ranked["B"] == [0, 1, 3]
    assert ranked["C"] == [0, 6, 7, 1, 8, 9]
    s = latent_scores(f[list(C)], f[list(BC)])
    everything = rank_latents(s.score, s.hr_frac, positive_only=False)
    assert sorted(everything) == list(range(D_SAE)) and everything[-1] == 5
    assert rank_latents(s.score, s.hr_frac, 2) == [0, 6]


def test_popularity_core_tail_and_intersections():
    top3 = {"A": [0, 2, 1], "B": [0, 1, 3], "C": [0, 6, 7]}
    pop = popularity(top3)
    assert list(pop) == [0, 1, 2, 3, 6, 7]
    assert pop[0] == ["A", "B", "C"] and pop[1] == ["A", "B"] and pop[6] == ["C"]
    assert default_core_min_splits(3) == 2 and default_core_min_splits(11) == 6
    core, tail, middle = core_and_tail(top3, 2)
    assert core == [0, 1]
    assert tail == {"A": [2], "B": [3], "C": [6, 7]}
    assert middle == []
    core, tail, middle = core_and_tail(top3, 3)
    assert core == [0] and middle == [1]
    inter = intersections(top3)
    assert inter["counts"] == [[3, 2, 1], [2, 3, 1], [1, 1, 3]]
    assert inter["jaccard"][0][1] == pytest.approx(2 / 4)
    assert inter["all_splits"] == [0]
    groups = {tuple(g["splits"]): g["latents"] for g in inter["by_split_set"]}
    assert groups == {("A", "B", "C"): [0], ("A", "B"): [1], ("A",): [2], ("B",): [3],
                      ("C",): [6, 7]}
    with pytest.raises(UserError):
        core_and_tail(top3, 0)


def test_top_activating_prompts():
    f = _latents()
    tops = top_activating(f, [0, 2, 11], 5)
    assert [r for r, _ in tops[0]] == [11, 10, 9, 8, 7]
    assert [r for r, _ in tops[2]] == [3, 2, 1, 0]  # fires on 4 rows only
    assert tops[11] == []  # never fires
    assert tops[0][0][1] == pytest.approx(2.1)


def test_analyze_latents_end_to_end(tmp_path):
    f = _latents()
    result = analyze_latents(f, _prompts(), SPLIT_ROWS, ks=[3, 2], examples_k=2, examples_n=3,
                             neuronpedia_url=lambda j: f"https://np/{j}")
    assert result.ks == [2, 3] and result.core_k == 3 and result.core_min_splits == 2
    assert [r["latent"] for r in result.top[3]["C"]] == [0, 6, 7]
    assert result.top[3]["B"][2] == {"latent": 3, "score": 0.5, "hr_frac": 0.75, "bc_frac": 0.25}
    assert result.core[3] == [0, 1] and result.core[2] == [0]
    assert result.tail[2] == {"A": [2], "B": [1], "C": [6]}
    assert result.tail[3] == {"A": [2], "B": [3], "C": [6, 7]}
    assert result.top_latents("C", 2) == [0, 6]
    assert result.core_latents() == [0, 1] and result.tail_latents("C") == [6, 7]
    # examples: every latent in a split's top-2, the core and the tails at core_k
    assert set(result.examples) == {0, 1, 2, 6} | {3, 7}
    only_top = analyze_latents(f, _prompts(), SPLIT_ROWS, ks=[3, 2], examples_k=2,
                               examples_tail=0)
    assert set(only_top.examples) == {0, 1, 2, 6}
    ex = result.examples[2]
    assert [e["prompt_id"] for e in ex] == ["p3", "p2", "p1"]
    assert ex[0]["split"] == "A" and ex[0]["label"] == "HR"
    assert result.latent_info[1]["score"] == {"A": 0.75, "B": 0.75, "C": 0.25}
    assert result.latent_info[1]["popularity"] == {"2": 1, "3": 2}
    assert result.latent_info[0]["neuronpedia"] == "https://np/0"
    s = result.summary()
    assert s["core_size"] == {"2": 1, "3": 2} and s["tail_size"] == {"2": 3, "3": 4}

    back = LatentAnalysis.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.core == result.core and back.tail == result.tail and back.top == result.top
    assert back.popularity == result.popularity and back.examples == result.examples

    text = latents_markdown(result)
    assert "core latent 0" in text and "tail (C) latent 6" in text and "https://np/0" in text
    for path in (plot_popularity(result, tmp_path / "pop.png"),
                 plot_overlap(result, 3, tmp_path / "overlap.png"),
                 plot_core_scores(result, tmp_path / "core.png")):
        assert path.stat().st_size > 1000


def test_core_min_splits_and_errors():
    f = _latents()
    result = analyze_latents(f, _prompts(), SPLIT_ROWS, ks=[3], core_min_splits=3)
    assert result.core[3] == [0] and result.shared[3] == [1]
    with pytest.raises(UserError, match="exceeds"):
        analyze_latents(f, _prompts(), SPLIT_ROWS, ks=[3], core_min_splits=4)
    with pytest.raises(UserError, match="core_k"):
        analyze_latents(f, _prompts(), SPLIT_ROWS, ks=[3], core_k=5)
    with pytest.raises(UserError, match="do not match"):
        analyze_latents(f[:10], _prompts(), SPLIT_ROWS)
    with pytest.raises(UserError, match="at least one HR"):
        analyze_latents(f, _prompts(), {"A": ([], list(BC))})
