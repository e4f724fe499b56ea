"""One model's part of the atlas, read from its run folder."""

import pytest

from refusal_atlas.atlas import load_model_run
from refusal_atlas.errors import UserError


def test_a_complete_run_gives_every_part(atlas_inputs):
    run_dir, states = atlas_inputs[0]
    m = load_model_run(run_dir, states)
    assert m["label"] == "qwen2" and m["problems"] == []
    assert m["splits"] == ["Alpha", "Beta", "Gamma"]
    assert m["geometry"]["available"] and len(m["geometry"]["cosine"]) == 3
    assert m["layer"]["available"] and m["layer"]["n_layers"] == 4
    assert 0 < m["layer"]["depth"] <= 1
    assert m["steering"]["available"] and m["steering"]["table"]["rows"]
    assert m["sae"]["available"] == ("sae_analysis" in states)
    if m["sae"]["available"]:
        assert m["sae"]["core_size"] is not None and m["sae"]["tail_size"] is not None


def test_a_run_that_stopped_early_says_what_was_not_run(atlas_inputs):
    run_dir, states = atlas_inputs[2]
    m = load_model_run(run_dir, states)
    assert m["splits"] == ["Alpha", "Gamma"]
    assert m["geometry"]["available"] and m["geometry"]["best_k"] is None
    assert "clustering needs at least 3" in m["geometry"]["clustering_reason"]
    assert not m["steering"]["available"] and m["steering"]["reason"].startswith("not run")
    assert not m["sae"]["available"] and m["sae"]["reason"].startswith("not run")


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        load_model_run(tmp_path, {})
    with pytest.raises(UserError, match="no such folder"):
        load_model_run(tmp_path / "nope", {})
