"""XSTest: the shared copy's counts and a bad local schema."""

from __future__ import annotations

from collections import Counter

import pytest

from refusal_atlas.data.sources.xstest import load_xstest
from refusal_atlas.data.splits import BENIGN_XSTEST, XSTEST_SPLIT
from refusal_atlas.errors import UserError

from ..fakes import SHARED, needs_shared, write_csv


@needs_shared
def test_xstest_counts():
    xs = load_xstest(SHARED / "xstest")
    assert Counter(p.meta["label"] for p in xs) == {"safe": 250, "unsafe": 200}
    assert len({p.meta["type"] for p in xs}) == 18
    assert [p.id for p in xs[:2]] == ["xstest/1", "xstest/2"]
    assert {p.split for p in xs if p.harmful} == {XSTEST_SPLIT}
    assert {p.split for p in xs if not p.harmful} == {BENIGN_XSTEST}
    assert len(load_xstest(SHARED / "xstest", label="safe")) == 250
    assert len(load_xstest(SHARED / "xstest" / "xstest_prompts.csv", label="unsafe")) == 200



def test_bad_local_schema(tmp_path):
    write_csv(tmp_path / "xstest_prompts.csv", [{"id": 1, "prompt": "x", "label": "safe"}])
    with pytest.raises(UserError, match=r"missing column\(s\) \['type'\]"):
        load_xstest(tmp_path)
    write_csv(tmp_path / "xstest_prompts.csv", [{"id": 1, "prompt": "x", "type": "t",
                                                  "label": "maybe"}])
    with pytest.raises(UserError, match="not safe/unsafe"):
        load_xstest(tmp_path)
