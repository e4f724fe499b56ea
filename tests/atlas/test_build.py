"""The atlas over three tiny runs: two complete ones and one that lacks a split."""

import json
import shutil

import pytest

from refusal_atlas.atlas import build_atlas
from refusal_atlas.errors import UserError
from refusal_atlas.pipeline import STAGES, stage_states


@pytest.fixture(scope="module")
def atlas(atlas_inputs):
    return build_atlas(atlas_inputs, seed=0)


def test_splits_are_aligned_and_a_missing_split_is_shown_not_an_error(atlas):
    json.dumps(atlas)
    assert atlas["problems"] == []
    assert atlas["split_order"] == ["Alpha", "Beta", "Gamma"]
    beta = next(r for r in atlas["presence"] if r["split"] == "Beta")
    assert beta["status"][:2] == ["direction", "direction"]
    assert beta["status"][2] == "not in this run's data"
    lacking = atlas["models"][2]["aligned_cosine"]
    assert lacking[1] == [None, None, None] and [row[1] for row in lacking] == [None] * 3
    assert lacking[0][0] == pytest.approx(1.0) and lacking[0][2] is not None


def test_two_runs_of_one_model_are_told_apart(atlas):
    labels = [m["label"] for m in atlas["models"]]
    assert labels[0] == "qwen2"
    assert len(set(labels)) == 3 and all(x.startswith("llama (") for x in labels[1:])


def test_each_pair_of_models_is_compared(atlas):
    pairs = {(p["a"], p["b"]): p for p in atlas["pairs"]}
    assert len(pairs) == 3
    full = atlas["pairs"][0]  # qwen2 vs llama: three shared splits, every order tried
    assert full["n_splits"] == 3 and full["exact"] and full["n_perm"] == 6
    assert -1 <= full["r"] <= 1 and 1 / 6 <= full["p_value"] <= 1
    for p in atlas["pairs"][1:]:  # with the run that lacks Beta: two shared splits
        assert p["r"] is None and "share 2" in p["reason"]


def test_the_p_value_is_the_same_for_the_same_seed(atlas_inputs, atlas):
    again = build_atlas(atlas_inputs, seed=0)
    assert [p["p_value"] for p in again["pairs"]] == [p["p_value"] for p in atlas["pairs"]]


def test_a_copy_of_a_run_has_the_same_geometry(atlas_inputs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(atlas_inputs[0][0], copy)
    data = build_atlas([atlas_inputs[0], (copy, stage_states(copy, STAGES))])
    assert data["pairs"][0]["r"] == pytest.approx(1.0)


def test_a_run_given_twice_or_none_is_one_line(atlas_inputs):
    with pytest.raises(UserError, match="given twice"):
        build_atlas([atlas_inputs[0], atlas_inputs[0]])
    with pytest.raises(UserError, match="at least one"):
        build_atlas([])
