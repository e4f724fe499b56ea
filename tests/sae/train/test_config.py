"""SAETrainConfig: one pydantic model for train_sae and the run config's sae.train."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from refusal_atlas.sae.train.config import SAETrainConfig

# SAETrainConfig().to_dict() of the dataclass it replaced: what trained SAEs record in
# extras["train_config"] and train_report.json, which must not change
RECORDED_BEFORE = {
    "architecture": "topk", "expansion": 8, "d_sae": None, "k": 32, "lr": None,
    "batch_size": 1024, "steps": None, "epochs": 3.0, "warmup": 0.05, "decay_start": 0.8,
    "seed": 0, "b_dec_init": "geometric_median", "normalize_inputs": True,
    "exclude_norm_outliers": 10.0, "aux_coeff": 0.03125, "aux_k": None,
    "dead_after_tokens": 50000, "l0_coeff": 2.0, "l0_warmup": 0.1, "jumprelu_bandwidth": 0.05,
    "jumprelu_init_l0": 128.0, "jumprelu_init_threshold": None, "adam_betas": [0.9, 0.999],
    "grad_clip": None, "compute_dtype": "auto", "device": "cpu", "num_threads": None,
    "log_every": 25, "eval_max_rows": 16384,
}


def test_to_dict_records_what_the_dataclass_recorded():
    assert SAETrainConfig().to_dict() == RECORDED_BEFORE
    assert list(SAETrainConfig().to_dict()) == list(RECORDED_BEFORE)  # the same key order
    pipeline = SAETrainConfig(architecture="topk", expansion=4, k=32, batch_size=1024,
                              steps=1200, seed=0, device="cpu", max_tokens=5000)
    assert pipeline.to_dict() == {**RECORDED_BEFORE, "expansion": 4, "steps": 1200}


def test_validation_names_the_field():
    with pytest.raises(ValidationError, match="steps"):
        SAETrainConfig(steps=0)
    with pytest.raises(ValidationError, match="architecture"):
        SAETrainConfig(architecture="gated")
    with pytest.raises(ValidationError, match="nope"):
        SAETrainConfig(nope=1)


def test_importing_the_config_does_not_import_torch():
    # the run config holds SAETrainConfig; loading a config (and --help) must stay fast
    code = "import sys, refusal_atlas.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
