"""Tests for refusal_atlas.style.llm (prompt, batch format, parsing, LLM classifier)."""

from __future__ import annotations

import re

import pytest

from refusal_atlas import paths
from refusal_atlas.errors import UserError
from refusal_atlas.style import (
    DEFAULT_STYLE_PROMPT,
    STYLES,
    UNPARSED,
    LLMStyleClassifier,
    OpenAICompatBackend,
    build_style_prompt,
    format_batch_lines,
    parse_style_lines,
    style_summary,
)


def test_our_prompt_defines_the_five_categories():
    for style in STYLES:
        assert style in DEFAULT_STYLE_PROMPT
    lines = format_batch_lines(["1", "2"], ["I can't.\nReally\tnot.", "Sure!"])
    assert lines == "1\tI can't. Really not.\n2\tSure!"
    prompt = build_style_prompt(DEFAULT_STYLE_PROMPT, lines)
    assert prompt.endswith("Replies:\n" + lines) and "{responses}" not in prompt


def test_build_prompt_placeholders():
    paste = (
        "Classify.\n=== RESPONSES ===\n"
        "(paste the contents of the model's _to_classify.txt file here)\n"
    )
    assert build_style_prompt(paste, "1\tx") == "Classify.\n=== RESPONSES ===\n1\tx\n"
    assert build_style_prompt("Classify these.\n", "1\tx") == "Classify these.\n\n1\tx"


def test_parse_style_lines_robust():
    text = (
        "Here are the labels:\n1\tSAFETY\n2 - generic\n3: **Capability**\n[4] NON-REFUSAL\n"
        "5.\tunderspec\n6\tSAFE\n99\tSAFETY\n1\tGENERIC\n"
    )
    labels, invalid = parse_style_lines(text, [str(i) for i in range(1, 8)])
    assert {k: v[0] for k, v in labels.items()} == {
        "1": "SAFETY",
        "2": "GENERIC",
        "3": "CAPABILITY",
        "4": "NONREFUSAL",
        "5": "UNDERSPEC",
    }
    assert labels["1"][1] == "1\tSAFETY"  # first line for an id wins
    assert invalid == 3  # header, invalid category, unknown id


# ---------------------------------------------------------------------------
# LLM classifier against a fake OpenAI-compatible server (tests/style/conftest.py)
# ---------------------------------------------------------------------------


def test_llm_classifier_openai_endpoint(fake_server, canned, monkeypatch):
    base_url, requests = fake_server
    monkeypatch.setenv("RA_TEST_STYLE_KEY", "sk-test-123")
    backend = OpenAICompatBackend(
        base_url, model="judge-model", api_key_env="RA_TEST_STYLE_KEY", timeout=10
    )
    clf = LLMStyleClassifier(backend, batch_size=4)
    responses = list(canned)
    labels = clf.classify(responses)
    assert [label.style for label in labels] == [
        "CAPABILITY",
        "SAFETY",
        "UNDERSPEC",
        "GENERIC",
        "NONREFUSAL",
        "GENERIC",
        UNPARSED,
    ]
    assert (
        labels[0].evidence == "1\tCAPABILITY" and labels[0].classifier == "llm:openai:judge-model"
    )
    # Batches of 4 and 3; the second batch misses two ids: one re-ask for them only.
    assert len(requests) == 3
    assert re.findall(
        r"^(\d+)\t", requests[2]["body"]["messages"][-1]["content"], flags=re.MULTILINE
    ) == ["6", "7"]
    assert clf.last_stats == {
        "n": 7,
        "requests": 3,
        "reasked": 2,
        "invalid_lines": 3,
        "unparsed": 1,
    }
    for r in requests:
        assert r["path"] == "/v1/chat/completions"
        assert r["headers"]["Authorization"] == "Bearer sk-test-123"
        assert r["body"]["temperature"] == 0 and r["body"]["model"] == "judge-model"
    assert requests[0]["body"]["messages"][-1]["content"].startswith(
        DEFAULT_STYLE_PROMPT.split("\n")[0]
    )
    assert style_summary({"d": labels})["d"]["unparsed"] == 1
    # No key in the environment: no Authorization header.
    monkeypatch.delenv("RA_TEST_STYLE_KEY")
    LLMStyleClassifier(backend).classify(["No."])
    assert "Authorization" not in requests[-1]["headers"]


def test_llm_classifier_prompt_file(fake_server, tmp_path):
    base_url, requests = fake_server
    prompt_file = tmp_path / "classify.txt"
    prompt_file.write_text(
        "MY PROMPT\nInput: <id><TAB><response>\n(paste the responses here)\n", encoding="utf-8"
    )
    clf = LLMStyleClassifier(
        OpenAICompatBackend(base_url, model="m2", api_key_env=None), prompt_file=prompt_file
    )
    labels = clf.classify(["That is illegal.", "No."])
    assert [x.style for x in labels] == ["SAFETY", "GENERIC"]
    assert (
        requests[0]["body"]["messages"][-1]["content"]
        == "MY PROMPT\nInput: <id><TAB><response>\n1\tThat is illegal.\n2\tNo.\n"
    )
    assert clf.name.endswith("+classify.txt")
    with pytest.raises(UserError):
        LLMStyleClassifier(
            OpenAICompatBackend(base_url, model="m2"), prompt_file=tmp_path / "missing.txt"
        )


def test_paper_prompt_file_if_available():
    data = paths.shared_data_dir()
    paper = data / "paper" / "refusal_type" / "CLASSIFY_PROMPT.txt" if data else None
    if paper is None or not paper.is_file():
        pytest.skip("the paper's CLASSIFY_PROMPT.txt is not available (shared data dir)")
    template = paper.read_text(encoding="utf-8")
    prompt = build_style_prompt(template, "1\tI can't.")
    assert prompt.rstrip().endswith("=== RESPONSES TO CLASSIFY ===\n1\tI can't.")
    assert "(paste" not in prompt
    # Its output format is the one we parse.
    assert "<id><TAB><CATEGORY>" in template
    assert "<id><TAB><CATEGORY>" not in DEFAULT_STYLE_PROMPT  # ours is written differently


def test_llm_classifier_with_plain_backend_reasks_once():
    class Flaky:
        name = "flaky"

        def __init__(self):
            self.prompts = []

        def complete(self, prompt, max_tokens):
            self.prompts.append(prompt)
            ids = re.findall(r"^(\d+)\t", prompt, flags=re.MULTILINE)
            return "\n".join(f"{i}\tsafety" for i in ids if i != "2") + "\n2\tPOLITE"

    backend = Flaky()
    labels = LLMStyleClassifier(backend, batch_size=20).classify(["a", "b", "c"])
    assert [x.style for x in labels] == ["SAFETY", UNPARSED, "SAFETY"]
    assert len(backend.prompts) == 2  # one re-ask only


