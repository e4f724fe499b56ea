"""Fixtures for the prompt-data tests: no test reaches the network."""

from __future__ import annotations

import datasets
import pytest

from .fakes import make_fake_hub

_REAL_LOAD_DATASET = datasets.load_dataset


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never reach the network: the hub is "unreachable" unless a test fakes it."""
    def load_dataset(path, *args, **kwargs):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (tests are offline)")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """``datasets.load_dataset`` reads repo ids from local copies; anything else is offline."""
    repos = make_fake_hub(tmp_path / "hub")
    real = _REAL_LOAD_DATASET
    calls: list[tuple] = []

    def load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs.get("split"), kwargs.get("data_files")))
        if path not in repos:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)")
        return real(str(repos[path]), name, cache_dir=str(tmp_path / "cache"), **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls
