import pytest
from conftest import toy_records, toy_suite

from refusal_atlas.errors import UserError
from refusal_atlas.labels import label_counts
from refusal_atlas.pools import build_test_set, draw_training_pools, pool_report


def test_pools_take_first_hr_in_order_and_a_seeded_shared_bc_draw():
    suite = toy_suite()
    # A: every odd prompt refused; B: only 3 refused; benign: every third refused
    recs = toy_records(suite, lambda p: (int(p.id.split("/")[1]) % 2 == 1) if p.split == "A" else
                    (int(p.id.split("/")[1]) < 3) if p.split == "B" else
                    (int(p.id.split("/")[1]) % 3 == 0))
    pools = draw_training_pools(suite, recs, n_hr=5, n_bc=5, seed=123, min_hr=2)
    assert pools.splits["A"].hr_ids == [f"A/{i}" for i in (1, 3, 5, 7, 9)]
    assert pools.splits["A"].available_hr == 10
    bc_a = pools.splits["A"].bc_ids
    assert len(bc_a) == 5 and all(int(i.split("/")[1]) % 3 != 0 for i in bc_a)
    # B has 3 HR: balanced to 3 BC, the first 3 of the same shared draw
    assert pools.splits["B"].hr_ids == ["B/0", "B/1", "B/2"]
    assert pools.splits["B"].bc_ids == bc_a[:3]
    assert any("only 3 HR" in w for w in pools.warnings)
    again = draw_training_pools(suite, recs, n_hr=5, n_bc=5, seed=123, min_hr=2)
    other = draw_training_pools(suite, recs, n_hr=5, n_bc=5, seed=7, min_hr=2)
    assert again.to_dict() == pools.to_dict()
    assert other.splits["A"].bc_ids != bc_a


def test_split_without_enough_hr_is_skipped_with_a_warning():
    suite = toy_suite()
    recs = toy_records(suite, lambda p: p.split == "A")
    pools = draw_training_pools(suite, recs, n_hr=4, n_bc=4, min_hr=4)
    assert list(pools.splits) == ["A"]
    assert any("B" in w and "skipped" in w for w in pools.warnings)
    with pytest.raises(UserError, match="no split"):
        draw_training_pools(suite, toy_records(suite, lambda p: False), n_hr=4, n_bc=4)


def test_test_set_is_disjoint_balanced_and_warns_on_shortfall():
    suite = toy_suite(n_split=30, n_benign=40)
    recs = toy_records(suite, lambda p: int(p.id.split("/")[1]) % 2 == 0)
    pools = draw_training_pools(suite, recs, n_hr=4, n_bc=4)
    test = build_test_set(suite, recs, pools, n_per_group=8, seed=0)
    assert not set(test.ids()) & pools.used_ids()
    assert {g: len(v) for g, v in test.groups.items()} == {"HR": 8, "HC": 8, "BR": 8, "BC": 8}
    label_of = {r.prompt_id: r.label for r in recs}
    for group, ids in test.groups.items():
        assert all(label_of[i] == group for i in ids)
    # round robin: both splits contribute equally to HR
    assert sum(i.startswith("A/") for i in test.groups["HR"]) == 4
    short = build_test_set(suite, recs, pools, n_per_group=50)
    assert len(short.groups["HR"]) == short.available["HR"] == 22
    assert any("only 22 HR" in w for w in short.warnings)


def test_counts_and_report():
    suite = toy_suite(n_split=10, n_benign=10)
    recs = toy_records(suite, lambda p: int(p.id.split("/")[1]) < 6)
    counts = label_counts(suite, recs)
    assert counts["splits"]["A"] == {"pool": 10, "labelled": 10, "HR": 6, "HC": 4,
                                     "judge_errors": 0, "not_labelled": 0}
    assert counts["benign"]["ben"] == {"pool": 10, "labelled": 10, "BR": 6, "BC": 4,
                                       "judge_errors": 0, "not_labelled": 0}
    pools = draw_training_pools(suite, recs, n_hr=3, n_bc=3, min_hr=2)
    rows = {r["name"]: r for r in pool_report(suite, recs, pools)}
    assert rows["A"]["train_hr"] == 3 and rows["ben"]["train_bc"] == 3
    # lazily labelled: the report says how many prompts of each source were not labelled
    lazy = [r for r in recs if int(r.prompt_id.split("/")[1]) < 8]
    rows = {r["name"]: r for r in pool_report(suite, lazy, pools)}
    assert rows["A"]["not_labelled"] == rows["ben"]["not_labelled"] == 2
    assert rows["A"]["HR"] == 6 and rows["A"]["HC"] == 2


def test_bc_are_drawn_in_the_benign_pools_seeded_order_whatever_is_labelled():
    """The BC draw is the pool's BC in :func:`benign_order` over the whole pool: the order
    lazy labelling labels in, so a labelled prefix of it gives the same first BC."""
    from refusal_atlas.labels import benign_order

    suite = toy_suite(n_split=10, n_benign=30)
    recs = toy_records(suite, lambda p: int(p.id.split("/")[1]) % 3 == 0)
    label_of = {r.prompt_id: r.label for r in recs}
    order = [p.id for p in benign_order(suite.benign["ben"], "ben", 123)]
    pools = draw_training_pools(suite, recs, n_hr=3, n_bc=3, seed=123, min_hr=2)
    assert pools.splits["A"].bc_ids == [i for i in order if label_of[i] == "BC"][:3]
    prefix = set(order[:8])  # the benign pool labelled only up to 8 of its 30 prompts
    partial = [r for r in recs if r.harmful or r.prompt_id in prefix]
    again = draw_training_pools(suite, partial, n_hr=3, n_bc=3, seed=123, min_hr=2)
    assert again.splits["A"].bc_ids == pools.splits["A"].bc_ids
