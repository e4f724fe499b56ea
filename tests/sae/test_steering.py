"""Latent sets as steering vectors: which splits to steer."""

from __future__ import annotations

from refusal_atlas.sae.steering import choose_steer_splits


def test_choose_steer_splits_spans_clusters():
    splits = ["a", "b", "c", "d", "e"]
    clusters = [["a", "b", "c"], ["d", "e"]]
    cosine = {("a", "b"): 0.1, ("b", "a"): 0.1, ("a", "c"): 0.2, ("c", "a"): 0.2,
              ("b", "c"): 0.9, ("c", "b"): 0.9, ("d", "e"): 0.5, ("e", "d"): 0.5}
    assert choose_steer_splits(splits, clusters, cosine, 3) == ["c", "d", "b"]
    assert choose_steer_splits(splits, None, None, 2) == ["a", "b"]
    assert choose_steer_splits(splits, clusters, cosine, None) == splits
