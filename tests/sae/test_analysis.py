"""analyze_latents on the planted latents (tests/sae/planted.py): the full, JSON-ready result."""

from __future__ import annotations

import json

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sae.analysis import LatentAnalysis, analyze_latents

from .planted import BC, SPLIT_ROWS, planted_analysis, planted_latents, planted_prompts


def test_analyze_latents_end_to_end():
    f = planted_latents()
    result = analyze_latents(f, planted_prompts(), SPLIT_ROWS, ks=[3, 2], examples_k=2, examples_n=3,
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
    only_top = analyze_latents(f, planted_prompts(), SPLIT_ROWS, ks=[3, 2], examples_k=2,
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

    assert result.to_dict() == planted_analysis().to_dict()  # what the text/figure tests use


def test_core_min_splits_and_errors():
    f = planted_latents()
    result = analyze_latents(f, planted_prompts(), SPLIT_ROWS, ks=[3], core_min_splits=3)
    assert result.core[3] == [0] and result.shared[3] == [1]
    with pytest.raises(UserError, match="exceeds"):
        analyze_latents(f, planted_prompts(), SPLIT_ROWS, ks=[3], core_min_splits=4)
    with pytest.raises(UserError, match="core_k"):
        analyze_latents(f, planted_prompts(), SPLIT_ROWS, ks=[3], core_k=5)
    with pytest.raises(UserError, match="do not match"):
        analyze_latents(f[:10], planted_prompts(), SPLIT_ROWS)
    with pytest.raises(UserError, match="at least one HR"):
        analyze_latents(f, planted_prompts(), {"A": ([], list(BC))})
