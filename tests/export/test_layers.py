"""Layer ranges and the resid_pre <-> block-output index."""

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.export.layers import (
    block_output_index,
    check_layers,
    parse_layer_range,
    resid_pre_layer,
)


def test_indices_are_inverse():
    assert [resid_pre_layer(block_output_index(L)) for L in range(5)] == list(range(5))


@pytest.mark.parametrize("text, layers", [("10-12", [10, 11, 12]), ("3", [3]),
                                          ("4,2,4", [2, 4]), (None, None)])
def test_parse(text, layers):
    assert parse_layer_range(text) == layers


@pytest.mark.parametrize("text", ["a", "5-3", ",", "1-x"])
def test_bad_ranges(text):
    with pytest.raises(UserError, match="--layers"):
        parse_layer_range(text)


def test_check_layers():
    assert check_layers([2, 4], 4, lowest=2, tool="llama.cpp") == [2, 4]
    with pytest.raises(UserError, match="layer 1 is out of range for llama.cpp.*2..4"):
        check_layers([1], 4, lowest=2, tool="llama.cpp")
