"""Tests for refusal_atlas.pipeline.stages.style (the style stage on a run folder)."""

import json

import pytest
from conftest import STYLE_ROWS

from refusal_atlas.config import load_config
from refusal_atlas.errors import UserError
from refusal_atlas.pipeline import RunContext
from refusal_atlas.pipeline.stages.style import run as run_style_stage

ROWS = STYLE_ROWS


def _run_dir(tmp_path, rows):
    stage = tmp_path / "steering"
    stage.mkdir(parents=True)
    (stage / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (stage / "_done.json").write_text("{}")
    return tmp_path


def test_style_stage_reports_dominant_style_and_purity(tmp_path):
    run = _run_dir(tmp_path, ROWS)
    ctx = RunContext(load_config(), run)
    out = run / "style"
    out.mkdir()
    summary = run_style_stage(ctx, out, False)
    assert summary["dominant"] == {"A": "SAFETY", "B": "CAPABILITY"}
    assert summary["purity"] == {"A": 1.0, "B": 1.0}
    full = json.loads((out / "summary.json").read_text())
    assert full["baseline"]["dominant"] == "GENERIC"
    assert full["by_direction_side"]["A | benign"]["counts"]["SAFETY"] == 1
    assert full["rules"]  # the rule table travels with the result
    assert (out / "styles.png").stat().st_size > 1000
    # resumable: a second call classifies nothing new and gives the same answer
    assert run_style_stage(ctx, out, True) == summary
    assert len((out / "styles.jsonl").read_text().splitlines()) == 5


def test_llm_classifier_needs_a_model(tmp_path):
    run = _run_dir(tmp_path, ROWS)
    cfg = load_config(set_values=["style.classifier=llm"])
    out = run / "style"
    out.mkdir()
    with pytest.raises(UserError, match="style.hf.model_name_or_path"):
        run_style_stage(RunContext(cfg, run), out, False)
