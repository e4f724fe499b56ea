"""The pools section: label counts, and what lazy labelling left unlabelled."""

import json

from refusal_atlas.report import build_report
from refusal_atlas.report.sections.pools import pools_section
from refusal_atlas.report.sections.summary import summary_section

from ..conftest import edit_json, renders


def test_lazy_labelling_is_said_with_what_was_not_labelled(full_run, data, rendered):
    counts = json.loads((full_run[1] / "labels/counts.json").read_text())
    assert counts["label_all"] is False and counts["n_not_labelled"] > 0  # the tiny run is lazy
    p, s = data["pools"], data["summary"]
    assert p["label_all"] is False and s["label_all"] is False
    assert p["n_labelled"] == s["n_labelled"] == counts["n_labelled"]
    assert sum(r["not_labelled"] for r in p["rows"]) == counts["n_not_labelled"]
    page = rendered[0].read_text(encoding="utf-8")
    assert "not labelled (lazy)" in page
    assert "Lazy labelling: " in page and "over the labelled prompts" in page
    assert f"{counts['n_not_labelled']} not labelled (lazy)" in rendered[1].read_text()


def test_a_run_that_labelled_everything_says_nothing_of_lazy_labelling(run_copy):
    run_dir, states = run_copy
    # counts.json of a run from before lazy labelling: every prompt labelled, n_prompts
    edit_json(run_dir / "labels/counts.json",
              lambda c: [c.pop(k) for k in ("label_all", "n_labelled", "n_not_labelled")])
    n = json.loads((run_dir / "labels/counts.json").read_text())["n_prompts"]
    p = pools_section(run_dir, states)
    s = summary_section(run_dir, json.loads((run_dir / "config.json").read_text()), states)
    assert p["label_all"] is True and s["label_all"] is True
    assert p["n_labelled"] == s["n_labelled"] == n
    page, md = renders(build_report(run_dir, states))
    assert "Lazy labelling" not in page and "(lazy:" not in page and "(lazy)" not in md
