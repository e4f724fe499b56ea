"""Tests for refusal_atlas.hub: deciding quickly whether the hub can be reached.

Issue 10: `--model no-such-model` printed 30 lines of hub retry warnings and took 49 s
before its one line. No test here touches the network: the probe is mocked.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from refusal_atlas import hub
from refusal_atlas.errors import UserError


@pytest.fixture
def online_env(monkeypatch):
    """As for a real user: no offline variables (conftest sets them for every test)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    probe = hub._probe  # tests may replace it; the cache to clear is the real one's
    probe.cache_clear()
    yield
    probe.cache_clear()


def test_offline_variables_decide_without_a_probe(monkeypatch, online_env):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_unreachable_reason() == "HF_HUB_OFFLINE is set"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "yes")
    assert hub.hub_unreachable_reason() == "TRANSFORMERS_OFFLINE is set"


def test_one_short_probe_per_process(monkeypatch, online_env):
    calls = []

    def refuse(address, timeout):
        calls.append((address, timeout))
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    first = hub.hub_unreachable_reason()
    assert first == "connecting to huggingface.co:443 failed with 'Network is unreachable'"
    assert hub.hub_unreachable_reason() == first
    assert calls == [(("huggingface.co", 443), hub.HUB_PROBE_TIMEOUT_S)]
    assert hub.HUB_PROBE_TIMEOUT_S <= 3


def test_probe_goes_to_the_proxy_or_the_endpoint(monkeypatch, online_env):
    seen = []

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(socket, "create_connection",
                        lambda address, timeout: seen.append(address) or Conn())
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org:8443")
    assert hub.hub_unreachable_reason() is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    assert hub.hub_unreachable_reason() is None
    assert seen == [("hub.example.org", 8443), ("proxy.local", 3128)]


def test_quiet_hub_hides_retry_warnings(caplog):
    retry_logger = logging.getLogger("huggingface_hub.utils._http")
    with caplog.at_level(logging.WARNING), hub.quiet_hub():
        retry_logger.warning("Retrying in 1s [Retry 1/5].")
    assert "Retrying" not in caplog.text


def _failing_from_pretrained(calls, cause=None):
    def from_pretrained(source, **kwargs):
        calls.append(kwargs)
        raise OSError(f"We couldn't connect to load {source}") from cause
    return from_pretrained


def test_unreachable_hub_fails_fast_with_one_line(monkeypatch, online_env):
    import transformers

    from refusal_atlas.models import load_model

    monkeypatch.setattr(hub, "_probe", lambda url: "connecting to huggingface.co:443 failed")
    calls = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        _failing_from_pretrained(calls))
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load_model("no-such-model", dtype="float32")
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("cannot load model 'no-such-model': it is not a packaged model")
    assert "not a local folder or .gguf file" in message
    assert "the hub cannot be reached: connecting to huggingface.co:443 failed; nor is " \
           "'no-such-model' in the local hub cache" in message
    # one attempt, and only at the local hub cache
    assert len(calls) == 1 and calls[0].get("local_files_only") is True


def test_offline_hub_with_the_real_loader_is_one_line(monkeypatch):
    # conftest sets HF_HUB_OFFLINE=1: the real transformers path, no network
    from refusal_atlas.models import load_model

    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set; nor is 'org/no-such-model' in "
                                        "the local hub cache") as err:
        load_model("org/no-such-model", dtype="float32")
    assert "\n" not in str(err.value)


def test_missing_repository_on_a_reachable_hub(monkeypatch, online_env):
    import transformers
    from huggingface_hub.errors import RepositoryNotFoundError

    from refusal_atlas.models import load_model

    missing = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
    Exception.__init__(missing, "401 Client Error")
    monkeypatch.setattr(hub, "_probe", lambda url: None)
    calls = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        _failing_from_pretrained(calls, missing))
    with pytest.raises(UserError, match="the Hugging Face hub has no repository "
                                        "'org/no-such-model', or it is private"):
        load_model("org/no-such-model", dtype="float32")
    assert len(calls) == 1 and "local_files_only" not in calls[0]


def test_typo_of_a_packaged_name_is_suggested():
    from refusal_atlas.models import load_model

    with pytest.raises(UserError, match="did you mean smollm2-135m-instruct"):
        load_model("smolm2-135m-instruct", dtype="float32")
