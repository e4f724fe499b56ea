import pytest
from pydantic import ValidationError

from refusal_atlas.config.sections import ExecutorSection


def test_num_gpus_is_a_fraction_or_whole_gpus():
    assert ExecutorSection(name="ray", num_gpus=0.5).num_gpus == 0.5
    assert ExecutorSection(name="ray", num_gpus=4).options()["num_gpus"] == 4
    with pytest.raises(ValidationError, match="whole number of GPUs, got 1.5"):
        ExecutorSection(name="ray", num_gpus=1.5)


def test_units_default_to_large_locally_and_small_across_ray_actors():
    assert ExecutorSection().batches_per_unit() == 16
    assert ExecutorSection(name="ray").batches_per_unit() == 4
    assert ExecutorSection(name="ray", unit_batches=2).batches_per_unit() == 2
    assert "unit_batches" not in ExecutorSection(name="ray").options()
