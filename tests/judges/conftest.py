import pytest


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_NO_PROGRESS", "1")
