"""The nested sae section, and configs written with its old flat keys (they still load)."""

from __future__ import annotations

import json

import pytest

from refusal_atlas.config import SAE_RENAMED_KEYS, RunConfig, load_config, migrate_config
from refusal_atlas.errors import UserError
from refusal_atlas.sae.train.config import SAETrainConfig

# The sae section of a run folder's config.json before the section was nested (demo preset)
OLD_FLAT_SAE = {
    "enabled": True, "source": "train", "layer": None, "expansion": 4, "k": 32,
    "train_steps": 1200, "train_batch_size": 1024, "train_max_tokens": 200000,
    "corpus_files": [], "top_k": [10, 50], "core_min_splits": None,
    "steer_alphas": "auto", "steer_sets": ["core", "split_topk"], "seed": 0,
    "architecture": "topk", "corpus_oversample": 8, "corpus_holdout": 0.1,
    "corpus_responses": False, "core_k": None, "examples_k": 10, "examples_n": 5,
    "steer_auto_alphas": [0.0, 0.5, 1.0, 2.0], "steer_normalize": None, "steer_topk": 10,
    "steer_splits": None, "steer_max_splits": 3, "steer_latents": [],
}


def test_old_flat_keys_migrate_to_the_nested_section(tmp_path, capsys):
    assert set(SAE_RENAMED_KEYS) == set(OLD_FLAT_SAE) - {"enabled", "source", "layer"}
    moved = migrate_config({"model": {"name": "m"}, "sae": dict(OLD_FLAT_SAE)})
    assert moved["model"] == {"name": "m"}
    assert set(moved["sae"]) == {"enabled", "source", "layer", "train", "corpus", "analysis",
                                 "steer"}
    assert moved["sae"]["train"] == {"architecture": "topk", "expansion": 4, "k": 32,
                                     "seed": 0, "steps": 1200, "batch_size": 1024,
                                     "max_tokens": 200000}
    assert moved["sae"]["steer"]["max_splits"] == 3 and moved["sae"]["corpus"]["oversample"] == 8

    # a run folder's config.json written then loads, silently, as the nested config
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"preset": "demo", "sae": OLD_FLAT_SAE}))
    old = load_config(path)
    assert capsys.readouterr() == ("", "")
    assert old.sae == load_config(preset="demo").sae
    assert old.sae.train.steps == 1200 and old.sae.steer.auto_alphas == [0.0, 0.5, 1.0, 2.0]
    # ... and so does a RunConfig validated from it directly (the report reads it that way)
    assert RunConfig.model_validate({"sae": OLD_FLAT_SAE}).sae.train.expansion == 4


def test_old_set_strings_and_layers():
    # the reference run's override, on top of the nested preset
    cfg = load_config(preset="demo", set_values=["sae.train_steps=200"])
    assert cfg.sae.train.steps == 200 and cfg.sae.train.expansion == 4
    # each layer is migrated before it is merged: the later layer wins either way
    old_file = {"sae": {"train_steps": 50}}
    cfg = load_config(overrides=old_file, set_values=["sae.train.steps=70"])
    assert cfg.sae.train.steps == 70
    cfg = load_config(overrides={"sae": {"train": {"steps": 70}}},
                      set_values=["sae.train_steps=50"])
    assert cfg.sae.train.steps == 50
    # in one mapping the nested spelling wins
    assert migrate_config({"sae": {"k": 3, "train": {"k": 5}}})["sae"]["train"] == {"k": 5}


def test_nested_section_defaults():
    cfg = load_config(preset="paper")
    assert cfg.sae.train.steps == 3000  # the pipeline's default; train_sae's own is None
    assert SAETrainConfig().steps is None
    assert cfg.sae.train.max_tokens == 200_000 and cfg.sae.train.batch_size == 1024
    assert cfg.sae.steer.alphas == [0.0, 10.0, 30.0, 60.0] and cfg.sae.steer.max_splits is None
    assert cfg.sae.analysis.top_k == [10, 50] and cfg.sae.corpus.holdout == 0.1
    partial = load_config(preset="paper", set_values=["sae.train.k=16"])
    assert partial.sae.train.steps == 3000 and partial.sae.train.k == 16
    assert load_config(preset="paper").to_dict()["sae"]["train"]["steps"] == 3000


def test_bad_values_name_the_nested_key():
    with pytest.raises(UserError, match=r"sae\.train\.steps"):
        load_config(set_values=["sae.train.steps=0"])
    with pytest.raises(UserError, match=r"sae\.train\.steps"):
        load_config(set_values=["sae.train_steps=0"])
    with pytest.raises(UserError, match=r"sae\.steer\.nope: unknown key"):
        load_config(set_values=["sae.steer.nope=1"])
