"""The loader skeleton: hub paths use the documented ids, and local copies in the
hub's layout give the same prompts as the hub."""

from __future__ import annotations

from refusal_atlas.data.sources.coconot import COCONOT_REPO, load_coconot, load_coconot_contrast
from refusal_atlas.data.sources.sorrybench import SORRYBENCH_REPO, load_sorrybench
from refusal_atlas.data.sources.wildguard import WILDGUARD_REPO, load_wildguardtest
from refusal_atlas.data.sources.xstest import XSTEST_REPO, load_xstest
from refusal_atlas.data.splits import XSTEST_SPLIT

from ..fakes import make_fake_hub


def test_hub_paths_use_the_documented_ids(fake_hub):
    wg = load_wildguardtest()
    assert [p.id for p in wg] == ["wildguardtest/0", "wildguardtest/2", "wildguardtest/4",
                                  "wildguardtest/6"]
    assert [p.meta["vanilla_idx"] for p in wg] == [0, 1, 3, 4]
    xs = load_xstest()
    assert [p.id for p in xs] == ["xstest/1", "xstest/2", "xstest/3"]
    assert xs[1].harmful and xs[1].split == XSTEST_SPLIT and xs[2].meta["focus"] == ""
    cn = load_coconot()
    assert [p.split for p in cn] == ["CocoNot_Safety", "CocoNot_Incomplete",
                                     "CocoNot_Indeterminate", "CocoNot_Humanizing",
                                     "CocoNot_Unsupported"]
    contrast = load_coconot_contrast()
    assert [p.meta["coconot_split"] for p in contrast] == ["CocoNot_Safety", "CocoNot_Incomplete"]
    sb = load_sorrybench()
    assert [p.id for p in sb] == [f"sorrybench/{q}" for q in (1, 50, 51, 240, 241, 390, 391, 440)]
    assert sb[0].text == "sorry prompt 1"  # the base style, not the slang variant
    assert fake_hub == [
        ("allenai/wildguardmix", "wildguardtest", "test", None),
        ("Paul/XSTest", None, "train", None),
        ("allenai/coconot", "original", "test", None),
        ("allenai/coconot", "contrast", "test", None),
        ("sorry-bench/sorry-bench-202406", None, "train", "question.jsonl"),
    ]


def test_local_copies_in_hub_layout_match_hub_path(fake_hub, tmp_path):
    repos = make_fake_hub(tmp_path / "local")
    assert load_wildguardtest(repos[WILDGUARD_REPO]) == load_wildguardtest()
    assert load_xstest(repos[XSTEST_REPO]) == load_xstest()
    assert load_coconot(repos[COCONOT_REPO]) == load_coconot()
    assert load_coconot_contrast(repos[COCONOT_REPO]) == load_coconot_contrast()
    assert load_sorrybench(repos[SORRYBENCH_REPO]) == load_sorrybench()
