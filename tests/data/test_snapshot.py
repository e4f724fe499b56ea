"""The run's prompt snapshot: written and read back, the suite is the same, in the same order."""

from __future__ import annotations

import json

from refusal_atlas.data.snapshot import (
    SNAPSHOT_PROMPTS,
    SNAPSHOT_SUITE,
    read_suite_snapshot,
    write_suite_snapshot,
)
from refusal_atlas.data.suites import limit_suite, load_suite


def test_snapshot_round_trip(tmp_path):
    suite = limit_suite(load_suite("demo", splits=["XSTest_all", "CocoNot_Safety"]), 3)
    summary = write_suite_snapshot(suite, tmp_path)
    assert summary["fingerprint"] == suite.fingerprint()
    assert summary["split_order"] == ["XSTest_all", "CocoNot_Safety"]
    assert json.loads((tmp_path / SNAPSHOT_SUITE).read_text()) == summary
    lines = (tmp_path / SNAPSHOT_PROMPTS).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [p.id for p in suite.all_prompts()]
    again = read_suite_snapshot(tmp_path)
    assert again == suite
    assert list(again.splits) == list(suite.splits) and list(again.benign) == list(suite.benign)
