"""The latent analysis' building blocks on the planted latents (tests/sae/planted.py)."""

from __future__ import annotations

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sae.scores import (
    core_and_tail,
    default_core_min_splits,
    intersections,
    latent_scores,
    popularity,
    rank_latents,
    top_activating,
)

from .planted import BC, D_SAE, SPLIT_ROWS, C, planted_latents


def test_scores_are_hr_minus_bc_firing_shares():
    f = planted_latents()
    s = latent_scores(f[list(C)], f[list(BC)], "C")
    assert s.n_hr == 4 and s.n_bc == 4
    expected = {0: 1.0, 1: 0.25, 2: 0.0, 3: -0.25, 4: 0.0, 5: -1.0, 6: 0.5, 7: 0.5, 8: 0.25,
                9: 0.25, 10: 0.0}
    for j, value in expected.items():
        assert float(s.score[j]) == pytest.approx(value), j
    assert float(s.hr_frac[6]) == 0.75 and float(s.bc_frac[6]) == 0.25


def test_ranking_breaks_ties_by_hr_share_then_index():
    f = planted_latents()
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
    f = planted_latents()
    tops = top_activating(f, [0, 2, 11], 5)
    assert [r for r, _ in tops[0]] == [11, 10, 9, 8, 7]
    assert [r for r, _ in tops[2]] == [3, 2, 1, 0]  # fires on 4 rows only
    assert tops[11] == []  # never fires
    assert tops[0][0][1] == pytest.approx(2.1)
