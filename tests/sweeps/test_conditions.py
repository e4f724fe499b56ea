"""Conditions: stable ids, grids, alphas."""

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sweeps import (
    BASELINE,
    Condition,
    ablation_grid,
    parse_alphas,
    resolve_alphas,
    steering_grid,
)

from .helpers import MIXED


def test_condition_ids_are_stable_and_round_trip():
    ids = [c.id for c in MIXED]
    assert ids == ["baseline", "steer/A/a=6", "steer/B/a=-5", "steer/A/L=1/a=4", "vector/V/a=3",
                   "ablate/A", "ablate/B", "steer/B/a=0"]
    for c in MIXED:
        assert Condition.from_id(c.id) == c
        assert Condition.from_dict(c.to_dict()) == c
    assert Condition("steer", "X", 2.5).id == "steer/X/a=2.5"
    assert Condition("steer", "B", 0.0).canonical() == BASELINE
    assert Condition("steer", "B", 1.0).canonical().id == "steer/B/a=1"
    for bad in [dict(kind="steer", name="A"), dict(kind="steer", name="A", alpha=float("nan")),
                dict(kind="ablate", name="A", alpha=1.0), dict(kind="nope", name="A"),
                dict(kind="baseline", name="A")]:
        with pytest.raises(UserError):
            Condition(**bad)
    with pytest.raises(UserError):
        Condition.from_id("steer/A/ten")


def test_grids():
    grid = steering_grid(["A", "B"], [0, 10, 30])
    assert [c.id for c in grid] == ["baseline", "steer/A/a=0", "steer/A/a=10", "steer/A/a=30",
                                    "steer/B/a=0", "steer/B/a=10", "steer/B/a=30"]
    assert [c.id for c in steering_grid(["A"], [5], layers=[3, 4])] == [
        "baseline", "steer/A/L=3/a=5", "steer/A/L=4/a=5"]
    assert [c.id for c in ablation_grid(["A", "B"])] == ["baseline", "ablate/A", "ablate/B"]


def test_alphas_parse_and_auto():
    assert parse_alphas("0, 10,30,10") == [0.0, 10.0, 30.0]
    assert parse_alphas("auto") == "auto"
    for bad in ["0,ten", "", "nan", "1,inf"]:
        with pytest.raises(UserError):
            parse_alphas(bad)

    class D:
        def __init__(self, gap):
            self.projection_gap = gap

    alphas, info = resolve_alphas("auto", {"a": D(10.0), "b": D(14.0)}, reference_gap=120.0)
    assert alphas == [0.0, 1.0, 3.0, 6.0, 10.0] and info["scale"] == pytest.approx(0.1)
    assert resolve_alphas([0, 5], {})[0] == [0.0, 5.0]
    with pytest.raises(UserError):
        resolve_alphas("auto", {"a": D(-1.0)})


def test_edit_conditions():
    from refusal_atlas.sweeps import Condition

    c = Condition("edit", "sae_notail:A")
    assert c.id == "edit/sae_notail:A" and Condition.from_id(c.id) == c
    assert not c.additive and not c.is_identity and c.canonical() == c
    for bad in ({"alpha": 1.0}, {"layer": 2}):
        with pytest.raises(UserError, match="edit condition has no alpha or layer"):
            Condition("edit", "x", **bad)
