import pytest
import torch

from refusal_atlas.directions import (
    compute_direction,
    diff_in_means,
    load_directions,
    save_directions,
)
from refusal_atlas.errors import UserError


def test_diff_in_means_is_unit_and_reports_raw_norm():
    hr = torch.tensor([[2.0, 0.0], [4.0, 0.0]])
    bc = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    unit, norm = diff_in_means(hr, bc)
    expected = torch.tensor([3.0, -1.0])
    assert norm == pytest.approx(float(expected.norm()))
    torch.testing.assert_close(unit, expected / expected.norm())


def test_manifest_has_the_method_fields(tmp_path):
    g = torch.Generator().manual_seed(0)
    hr = torch.randn(8, 16, generator=g) + 3
    bc = torch.randn(6, 16, generator=g)
    d = compute_direction("S", hr, bc, layer=5, position=-2, model="m",
                          hr_ids=[f"h{i}" for i in range(8)], bc_ids=[f"b{i}" for i in range(6)])
    m = d.manifest()
    for key in ("model", "layer", "position", "n_hr", "n_bc", "hr_ids", "bc_ids", "hr_proj_mean",
                "bc_proj_mean", "raw_norm", "projection_gap", "d_model", "direction_sha256"):
        assert key in m
    assert m["hr_proj_mean"] == pytest.approx(float((hr @ d.vector).mean()), rel=1e-5)
    assert m["projection_gap"] > 0


def test_save_and_load_round_trip(tmp_path):
    from safetensors.torch import load_file

    g = torch.Generator().manual_seed(1)
    dirs = {name: compute_direction(name, torch.randn(5, 12, generator=g) + i,
                                    torch.randn(5, 12, generator=g), layer=3, position=-2,
                                    model="m", hr_ids=["a"], bc_ids=["b"])
            for i, name in enumerate(["A", "B", "C"])}
    save_directions(dirs, tmp_path)
    raw = load_file(str(tmp_path / "directions.safetensors"))
    assert set(raw) == {"A", "B", "C"} and all(t.dtype == torch.float32 and t.shape == (12,)
                                                 for t in raw.values())
    back = load_directions(tmp_path)
    assert list(back) == ["A", "B", "C"]
    for name in dirs:
        torch.testing.assert_close(back[name].vector, dirs[name].vector, rtol=0, atol=0)
        assert back[name].manifest() == dirs[name].manifest()


def test_direction_errors():
    with pytest.raises(UserError):
        diff_in_means(torch.zeros(0, 4), torch.zeros(3, 4))
    with pytest.raises(UserError, match="identical"):
        diff_in_means(torch.ones(2, 4), torch.ones(3, 4))


@pytest.mark.parametrize("manifest", ['{"no_splits": 1}', '{"splits": ["A"], "directions": {}}',
                                      '["not", "a", "mapping"]'])
def test_a_damaged_manifest_is_one_line(tmp_path, manifest):
    d = compute_direction("A", torch.ones(2, 4) + torch.eye(4)[:2], torch.zeros(3, 4), layer=1,
                          position=-2, model="toy")
    save_directions({"A": d}, tmp_path)
    (tmp_path / "directions.json").write_text(manifest)
    with pytest.raises(UserError, match="directions.json") as err:
        load_directions(tmp_path)
    assert "\n" not in str(err.value)
