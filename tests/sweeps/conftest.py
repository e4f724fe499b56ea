import pytest
from conftest import one_torch_thread


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield
