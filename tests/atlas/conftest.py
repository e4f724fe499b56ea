"""Three tiny runs for the atlas's tests: tiny Qwen2 and tiny Llama through `run --models`
(every stage, three splits each), and a tiny Llama run that lacks the Beta split and stops
after the geometry (no steering, no SAE)."""

from __future__ import annotations

import pytest
from conftest import TINY_SETTINGS, write_tiny_suite
from report.conftest import SAE_SETTINGS, has_sae_stages, tiny_run

from refusal_atlas.cli import main
from refusal_atlas.pipeline import STAGES, stage_states
from refusal_atlas.sweeps import GAP_UNCERTAINTY


def tiny_sets() -> list[str]:
    settings = TINY_SETTINGS + (SAE_SETTINGS if has_sae_stages() else
                                [s for s in SAE_SETTINGS if not s.startswith("sae.")])
    return [x for s in settings for x in ("--set", s)]


@pytest.fixture(scope="package")
def model_runs(tiny_model_dirs, tmp_path_factory):
    """``{"qwen2": run_dir, "llama": run_dir}``: both tiny models, one `run --models` call,
    ``--out ROOT`` (so ``ROOT/qwen2`` and ``ROOT/llama``)."""
    root = tmp_path_factory.mktemp("atlas_runs")
    suite = write_tiny_suite(root / "suite")
    models = ",".join(str(tiny_model_dirs[f]) for f in ("qwen2", "llama"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        for key, value in {"n_boot": 30, "n_perm": 30, "seed": 0}.items():
            mp.setitem(GAP_UNCERTAINTY, key, value)
        code = main(["run", "--models", models, "--data", str(suite), "--dtype", "float32",
                     *tiny_sets(), "--out", str(root / "out")])
    assert code == 0
    return {f: root / "out" / f for f in ("qwen2", "llama")}


@pytest.fixture(scope="package")
def lacking_run(tiny_model_dirs, tmp_path_factory):
    """Tiny Llama on Alpha and Gamma only, up to the geometry: Beta is missing, and so are
    the steering and SAE stages."""
    _, run_dir, errors = tiny_run(tiny_model_dirs["llama"], tmp_path_factory.mktemp("lacking"),
                                  ("Alpha", "Gamma"), (("geometry",),))
    assert errors == []
    return run_dir


@pytest.fixture(scope="package")
def atlas_inputs(model_runs, lacking_run):
    """``(run_dir, states)`` of the three runs, Qwen2 first."""
    dirs = [model_runs["qwen2"], model_runs["llama"], lacking_run]
    return [(d, stage_states(d, STAGES)) for d in dirs]
