"""Tests for refusal_atlas.geometry.io: geometry.json written and read back."""

from __future__ import annotations

import json

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.geometry import analyze_geometry
from refusal_atlas.geometry.io import load_geometry, save_geometry

from .conftest import pools_for


def test_save_and_load_round_trip(tmp_path):
    pools, dirs = pools_for({"a": 1.0, "b": 2.0, "c": 0.3, "d": 1.2}, seed=12)
    res = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=10, seed=0)
    text = json.dumps(res.to_dict())
    save_geometry(res, tmp_path)
    loaded = load_geometry(tmp_path)
    assert loaded.to_dict() == json.loads(text)
    assert load_geometry(tmp_path / "geometry.json").best_k == res.best_k


def test_load_geometry_without_a_file_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_geometry(tmp_path)
