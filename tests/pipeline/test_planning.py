from refusal_atlas.config import load_config
from refusal_atlas.data import load_suite
from refusal_atlas.pipeline.planning import estimate_stages, expected_labelled


def test_labels_estimate_counts_what_lazy_labelling_is_expected_to_label():
    lazy = load_config(preset="demo", set_values=["labels.label_all=false"])
    every = load_config(preset="demo")
    suite = load_suite("demo")
    n = len(suite.all_prompts())
    assert expected_labelled(every, suite) == n
    # rough: the demo's lazy labelling labels 930 of its 1477 prompts
    assert 0.5 * n < expected_labelled(lazy, suite) < 0.7 * n
    est_lazy, est_all = (estimate_stages(c, ["labels", "activations"]) for c in (lazy, every))
    assert est_all["labels"].units == n
    assert est_lazy["labels"].units == est_lazy["activations"].units < n
    assert est_lazy["labels"].seconds < est_all["labels"].seconds
    assert load_config(preset="paper").labels.label_all is True
