import pytest
import torch


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """Tiny models run ~50x faster on one thread than on two when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
