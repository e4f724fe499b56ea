"""The plan: every generated row once, ablation rows together, longest prompts first."""

from refusal_atlas.sweeps import SweepBatch, ablation_grid, plan_batches, steering_grid

from .helpers import tiny_prompts


def test_plan():
    grid = steering_grid(["A", "B"], [0, 10, 30])
    prompts = tiny_prompts()
    lengths = {p.id: len(p.text) for p in prompts}
    conds = grid + ablation_grid(["A"], baseline=False)
    batches = plan_batches(conds, prompts, lengths, 4)
    rows = [r for b in batches for r in b.rows]
    # alpha = 0 collapses to the baseline; each generated (condition, prompt) row exactly once
    assert len(rows) == len({(r.condition.id, r.prompt_id) for r in rows}) == 6 * len(prompts)
    assert "steer/A/a=0" not in {r.condition.id for r in rows}
    assert all(len(b.rows) <= 4 for b in batches)
    kinds = [r.condition.kind == "ablate" for r in rows]
    assert kinds == sorted(kinds)  # ablation rows last, together
    steer_rows = [r for r in rows if r.condition.kind != "ablate"]
    assert [lengths[r.prompt_id] for r in steer_rows] == sorted(
        (lengths[r.prompt_id] for r in steer_rows), reverse=True)
    assert [b.key for b in batches] == [b.key for b in plan_batches(conds, prompts, lengths, 4)]
    assert SweepBatch.from_dict(batches[0].to_dict()) == batches[0]
    assert len([r for b in plan_batches(conds, prompts, lengths, 4, dedupe=False)
                for r in b.rows]) == 8 * len(prompts)


def test_plan_leaves_out_skipped_rows():
    prompts = tiny_prompts()
    lengths = {p.id: len(p.text) for p in prompts}
    conds = steering_grid(["A"], [0, 10])
    skip = {("baseline", p.id) for p in prompts[:4]}
    rows = [(r.condition.id, r.prompt_id) for b in plan_batches(conds, prompts, lengths, 4,
                                                                skip=skip) for r in b.rows]
    full = [(r.condition.id, r.prompt_id) for b in plan_batches(conds, prompts, lengths, 4)
            for r in b.rows]
    assert rows == [k for k in full if k not in skip] and len(rows) == len(full) - 4
