"""SORRY-Bench: category ids grouped into the paper's splits."""

from __future__ import annotations

from refusal_atlas.data.sources.sorrybench import load_sorrybench

from ..fakes import SB_ROWS, write_jsonl


def test_sorrybench_groups(tmp_path):
    write_jsonl(tmp_path / "question.jsonl", SB_ROWS)
    sb = load_sorrybench(tmp_path)
    assert [(p.meta["category"], p.split) for p in sb] == [
        (1, "SorryBench_HateSpeech"), (5, "SorryBench_HateSpeech"),
        (6, "SorryBench_CrimesTorts"), (24, "SorryBench_CrimesTorts"),
        (25, "SorryBench_Inappropriate"), (39, "SorryBench_Inappropriate"),
        (40, "SorryBench_Advice"), (44, "SorryBench_Advice")]
    assert all(p.harmful for p in sb)
