"""Re-judging a sweep's rows with a second judge: agreement, metrics, resume."""

import json

import pytest

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.errors import UserError
from refusal_atlas.judges import get_judge
from refusal_atlas.sweeps import GAP_UNCERTAINTY, rejudge_rows, run_sweep, steering_grid

from .helpers import tiny_prompts, tiny_vectors


def test_rejudge_rows_writes_agreement_and_resumes(qwen_tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_boot", 20)
    monkeypatch.setitem(GAP_UNCERTAINTY, "n_perm", 20)
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    prompts = tiny_prompts()
    result = run_sweep(qwen_tiny, fmt, prompts, steering_grid(["A"], [0, 4]),
                       tiny_vectors(qwen_tiny), tmp_path / "sweep", max_new_tokens=4,
                       batch_size=4, judge=get_judge("substring"))
    by_id = {p.id: p for p in prompts}
    out = tmp_path / "sweep" / "rejudge" / "marker"
    agreement = rejudge_rows(result.rows, by_id, get_judge("marker"), out)
    assert agreement["judge_a"] == "substring" and agreement["judge_b"] == "marker"
    assert agreement["overall"]["n_rows"] == 3 * 6
    assert set(agreement["per_condition"]) == {"baseline", "steer/A/a=0", "steer/A/a=4"}
    assert json.loads((out / "agreement.json").read_text()) == agreement
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judge"] == "marker"

    class MustNotJudge:
        name, approximate = "marker", False

        def judge(self, prompts, responses):
            raise AssertionError("every row is judged already")

    assert rejudge_rows(result.rows, by_id, MustNotJudge(), out) == agreement
    with pytest.raises(UserError, match="already judged"):
        rejudge_rows(result.rows, by_id, get_judge("substring"), out)
    with pytest.raises(UserError, match="no judged rows"):
        rejudge_rows([], by_id, get_judge("marker"), out)
