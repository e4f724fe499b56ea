"""Tests for refusal_atlas.geometry.result: GeometryResult to and from its JSON form."""

from __future__ import annotations

import json

import numpy as np

from refusal_atlas.geometry import analyze_geometry
from refusal_atlas.geometry.result import GeometryResult

from .conftest import pools_for


def test_json_round_trip():
    pools, dirs = pools_for({"a": 1.0, "b": 2.0, "c": 0.3, "d": 1.2}, seed=12)
    res = analyze_geometry(dirs, bootstrap_pools=pools, n_resamples=10, seed=0)
    d = res.to_dict()
    text = json.dumps(d)  # JSON-ready without a custom encoder
    back = GeometryResult.from_dict(json.loads(text))
    assert back.to_dict() == json.loads(text)
    np.testing.assert_array_equal(back.cosine, res.cosine)
    np.testing.assert_array_equal(back.clustering.linkages["complete"].linkage,
                                  res.clustering.linkages["complete"].linkage)
    assert back.clustering.linkages["average"].labels == res.clustering.linkages["average"].labels
    assert back.bootstrap.within("a") == res.bootstrap.within("a")
