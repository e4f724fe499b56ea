"""WildGuardTest: the harm filter on a local copy."""

from __future__ import annotations

import pytest

from refusal_atlas.data.sources.wildguard import load_wildguardtest, wildguardtest_pools
from refusal_atlas.data.splits import BENIGN_GENERAL, WILDGUARD_SPLIT
from refusal_atlas.errors import UserError

from ..fakes import WG_ROWS, write_parquet


def test_wildguard_harm_filter(tmp_path):
    write_parquet(tmp_path / "test" / "wildguard_test.parquet", WG_ROWS)
    harmful, benign = wildguardtest_pools(tmp_path)
    assert [p.text for p in harmful] == ["wg harmful 0", "wg harmful 4"]
    assert {p.split for p in harmful} == {WILDGUARD_SPLIT}
    assert [p.text for p in benign] == ["wg benign 2", "wg benign 6"]
    assert {p.split for p in benign} == {BENIGN_GENERAL}
    assert load_wildguardtest(tmp_path, harm="harmful") == harmful
    assert load_wildguardtest(tmp_path, harm="unharmful") == benign
    assert harmful[0].meta["subcategory"] == "violence"
    with pytest.raises(UserError, match="harm must be"):
        load_wildguardtest(tmp_path, harm="maybe")
