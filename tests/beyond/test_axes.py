"""The shared axis, PC1 and the specific parts, against direct calculations."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from refusal_atlas.beyond.axes import (
    SHARED_NAME,
    axes_findings,
    axis_vectors,
    shared_axes,
    specific_name,
)
from refusal_atlas.errors import UserError


def _dirs(vectors, layer=2):
    return {f"S{i}": SimpleNamespace(vector=torch.tensor(v, dtype=torch.float32), layer=layer)
            for i, v in enumerate(vectors)}


def test_axes_against_numpy():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(4, 6)) + np.array([3.0, 0, 0, 0, 0, 0])  # a common component
    dirs = _dirs(raw * np.array([[1.0], [2.0], [0.5], [3.0]]))  # scale must not matter
    ax = shared_axes(dirs)
    units = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    s = units.mean(0) / np.linalg.norm(units.mean(0))
    assert np.allclose(ax.shared.numpy(), s, atol=1e-6)
    _, sing, vt = np.linalg.svd(units)
    pc1 = vt[0] * np.sign(vt[0] @ s)
    assert np.allclose(ax.pc1.numpy(), pc1, atol=1e-5)
    assert ax.pc1_variance == pytest.approx(sing[0] ** 2 / (sing ** 2).sum(), abs=1e-6)
    assert ax.cos_shared_pc1 == pytest.approx(float(pc1 @ s), abs=1e-6)
    for i, name in enumerate(dirs):
        rest = units[i] - (units[i] @ s) * s
        assert ax.specific_norm[name] == pytest.approx(np.linalg.norm(rest), abs=1e-6)
        assert np.allclose(ax.specific[name].numpy(), rest / np.linalg.norm(rest), atol=1e-5)
        assert abs(float(ax.specific[name] @ ax.shared)) < 1e-6  # r_c is orthogonal to s
        assert ax.cos_with_shared[name] == pytest.approx(units[i] @ s, abs=1e-6)


def test_identical_directions_have_no_specific_part_and_layers_must_match():
    ax = shared_axes(_dirs([[1.0, 0, 0], [2.0, 0, 0]]))
    assert ax.specific == {} and ax.pc1_variance == pytest.approx(1.0)
    mixed = {**_dirs([[1.0, 0]]), "X": SimpleNamespace(vector=torch.tensor([0.0, 1]), layer=3)}
    with pytest.raises(UserError, match="different layers"):
        shared_axes(mixed)
    with pytest.raises(UserError, match="cancel"):
        shared_axes(_dirs([[1.0, 0], [-1.0, 0]]))


def test_axis_vectors_are_unit_at_the_layer():
    dirs = _dirs([[3.0, 0, 1], [0, 2.0, 1], [1.0, 1, 0]], layer=5)
    ax = shared_axes(dirs)
    vectors = axis_vectors(ax, dirs, ["S0", "S1"])
    assert set(vectors) == {SHARED_NAME, "S0", "S1", specific_name("S0"), specific_name("S1")}
    for v in vectors.values():
        assert v.layer == 5 and v.norm == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(vectors["S0"].vector, torch.tensor([3.0, 0, 1]) / 10 ** 0.5)


def _table(rr_spec, styles_spec, styles_s, n=30):
    def entry(rr, styles):
        harmful = {f"p{i}": i < rr * n for i in range(n)}
        return {"rr": {"rate": rr, "k": int(rr * n), "n": n, "ci95": [rr, rr]},
                "orr": {"rate": 0.0, "k": 0, "n": 0, "ci95": [None, None]},
                "harmful": harmful, "styles": {f"p{i}": s for i, s in enumerate(styles)},
                "style_counts": {}}
    return entry(rr_spec, styles_spec), entry(0.5, styles_s)


def test_axes_findings_verdicts():
    dirs = _dirs([[1.0, 0.2, 0], [0.2, 1.0, 0], [0.5, 0.5, 1.0]])
    ax = shared_axes(dirs)
    spec, shared = _table(0.5, ["CAPABILITY"] * 15, ["SAFETY"] * 15)
    base, _ = _table(0.5, ["SAFETY"] * 15, [])
    table = {"baseline": base, "steer/shared_axis/a=4": shared,
             "steer/specific:S0/a=4": spec}
    few, _ = _table(0.5, ["CAPABILITY"] * 2, [])
    table["steer/specific:S1/a=4"] = few
    out = axes_findings(table, ax, ["S0", "S1"], 4.0, n_perm=200)
    by = {f.subject: f for f in out}
    assert by["S0"].supported is True and by["S0"].verdict == "style without rate"
    assert by["S0"].details["tv"] == 1.0 and by["S0"].details["p_rr"] == 1.0
    assert by["S1"].supported is None and by["S1"].verdict == "not decidable"
    assert by["summary"].supported is True and "1 of 2" in by["summary"].verdict
    assert all(f.experiment == "style_vs_rate" for f in out)
