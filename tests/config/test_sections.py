import pytest
from pydantic import ValidationError

from refusal_atlas.config.sections import ExecutorSection


def test_num_gpus_is_a_fraction_or_whole_gpus():
    assert ExecutorSection(name="ray", num_gpus=0.5).num_gpus == 0.5
    assert ExecutorSection(name="ray", num_gpus=4).options()["num_gpus"] == 4
    with pytest.raises(ValidationError, match="whole number of GPUs, got 1.5"):
        ExecutorSection(name="ray", num_gpus=1.5)
