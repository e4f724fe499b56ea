"""One tiny run through every stage the report reads, shared by the report's tests."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REFUSE_MARK, TINY_SETTINGS, write_tiny_suite

from refusal_atlas.config import load_config
from refusal_atlas.errors import UserError
from refusal_atlas.pipeline import STAGES, run_pipeline, stage_map, stage_states
from refusal_atlas.report import build_report, render_html, render_markdown, write_report
from refusal_atlas.sweeps import GAP_UNCERTAINTY

SAE_SETTINGS = [
    "sae.train.steps=20", "sae.train.batch_size=64", "sae.train.expansion=2", "sae.train.k=4",
    "sae.train.max_tokens=1500", "sae.analysis.top_k=[2,4]", "sae.steer.topk=2",
    "sae.steer.max_splits=2", "sae.steer.alphas=[0,2]", "sae.corpus.oversample=2",
    "steering.alphas=[0,2]", "report.samples_per_condition=3",
]
XSS_SCRIPT = "<script>window.__xss = 1; document.title = 'XSS'; alert(1)</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss = 2; document.title = 'XSS'\">"
PAYLOAD = f"Sure! {XSS_SCRIPT} and {XSS_IMG} & more"


def has_sae_stages() -> bool:
    return "sae_steering" in stage_map()


def tiny_run(model_dir, root, splits=("Alpha", "Beta", "Gamma"), targets=(("report",),),
             never_refused=()):
    """A tiny run of the tiny suite restricted to ``splits`` (one direction per split but
    those in ``never_refused``, whose prompts the marker judge never refuses), the pipeline
    run once per entry of ``targets``; a stage refusing its input (UserError) ends that
    entry, as it ends a real run. Returns ``(cfg, run_dir, errors)``."""
    suite = write_tiny_suite(root / "suite")
    for extra in {"Alpha", "Beta", "Gamma"} - set(splits):
        (suite / f"{extra}.jsonl").unlink()
    for name in never_refused:
        path = suite / f"{name}.jsonl"
        path.write_text(path.read_text().replace(f" {REFUSE_MARK}", ""))
    # lazy labelling, so the report's words for prompts left unlabelled are rendered too
    settings = TINY_SETTINGS + ["labels.label_all=false"] + (
        SAE_SETTINGS if has_sae_stages() else
        [s for s in SAE_SETTINGS if not s.startswith("sae.")])
    cfg = load_config(overrides={"model": {"name": str(model_dir), "dtype": "float32"},
                                 "data": {"suite": str(suite)}}, set_values=settings)
    run_dir = root / "run"
    errors = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        # few resamples: the gap's uncertainty is not what these tests check
        for key, value in {"n_boot": 30, "n_perm": 30, "seed": 0}.items():
            mp.setitem(GAP_UNCERTAINTY, key, value)
        for names in targets:
            try:
                run_pipeline(cfg, run_dir, list(names))
            except UserError as exc:
                errors.append(str(exc))
    return cfg, run_dir, errors


@pytest.fixture(scope="package")
def full_run(tiny_model_dirs, tmp_path_factory):
    """One tiny run through every stage the report reads (SAE stages when they exist), the
    report stage included; then a generation with HTML in it is injected into the steering
    results (rows of the baseline and of every alpha > 0 condition)."""
    cfg, run_dir, errors = tiny_run(tiny_model_dirs["qwen2"], tmp_path_factory.mktemp("report_run"))
    assert not errors
    path = run_dir / "steering" / "results.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for r in rows:
        if r["condition"] == "baseline" or (r.get("alpha") or 0) > 0:
            r["response"] = PAYLOAD
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return cfg, run_dir


@pytest.fixture(scope="package")
def data(full_run):
    return build_report(full_run[1], stage_states(full_run[1], STAGES))


@pytest.fixture(scope="package")
def rendered(full_run, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    html_path, md_path = write_report(data, out)
    return html_path, md_path


@pytest.fixture(scope="package")
def two_run(tiny_model_dirs, tmp_path_factory):
    """A complete tiny run with exactly two directions (a user file with two categories):
    one pair, no clustering; the report stage included."""
    return tiny_run(tiny_model_dirs["qwen2"], tmp_path_factory.mktemp("report_two"),
                    ("Alpha", "Beta"))


@pytest.fixture(scope="package")
def one_run(tiny_model_dirs, tmp_path_factory):
    """A tiny run with one direction: geometry (and what needs it) cannot run; steering,
    ablation and the SAE analysis can, and are run."""
    # The study needs two categories; the second gets no direction (no refused prompt).
    return tiny_run(tiny_model_dirs["qwen2"], tmp_path_factory.mktemp("report_one"),
                    ("Alpha", "Beta"), (("report",), ("steering", "ablation")
                                        + (("sae_analysis",) if has_sae_stages() else ())),
                    never_refused=("Beta",))


def renders(data):
    """Check report data the way every kind-of-run test does: JSON-ready, no section crashed
    (``problems``), the HTML page renders with every key it reads present (strict) and the
    Markdown renders. Returns ``(page, markdown)``."""
    json.dumps(data)
    assert data["problems"] == []
    return render_html(data, strict=True), render_markdown(data)


def edit_json(path, change):
    """Rewrite a JSON artifact: ``change(obj)`` edits the object in place (what it returns
    is ignored)."""
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


@pytest.fixture
def run_copy(full_run, tmp_path):
    """A copy of the complete run to edit, and the original's stage states (the edits are
    the case under test, not a stage that the pipeline would now call stale)."""
    run_dir = tmp_path / "run"
    shutil.copytree(full_run[1], run_dir)
    return run_dir, stage_states(full_run[1], STAGES)
