"""Tests for refusal_atlas.style (rule and LLM refusal-style classifiers, summary)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from refusal_atlas import paths
from refusal_atlas.errors import UserError
from refusal_atlas.style import (
    DEFAULT_STYLE_PROMPT,
    STYLES,
    UNPARSED,
    HFChatBackend,
    LLMStyleClassifier,
    OpenAICompatBackend,
    RuleStyleClassifier,
    StyleLabel,
    build_style_prompt,
    explain_rules,
    format_batch_lines,
    parse_style_lines,
    style_summary,
)

QWEN_TOKENIZER = Path(os.environ.get("REFUSAL_ATLAS_TEST_TOKENIZER", "/tmp/qwen_st"))
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_NO_PROGRESS", "1")


# ---------------------------------------------------------------------------
# Rule classifier
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, style, evidence",
    [
        # CAPABILITY
        (
            "I am a text-based AI, so I cannot interact with the physical world.",
            "CAPABILITY",
            "I am a text-based",
        ),
        (
            "As an AI, I don\u2019t have personal feelings, memories, or opinions.",
            "CAPABILITY",
            "I don\u2019t have personal feelings",
        ),
        (
            "I\u2019m sorry, I can\u2019t browse the internet or see images.",
            "CAPABILITY",
            "I can\u2019t browse",
        ),
        ("I cannot provide real-time stock prices.", "CAPABILITY", "I cannot provide real-time"),
        ("As an AI, I cannot do that.", "CAPABILITY", "As an AI"),  # weak cue only
        # SAFETY
        (
            "I cannot help with that. Tampering with a crime scene is illegal and harmful.",
            "SAFETY",
            "crime",
        ),
        (
            "I\u2019m sorry, but as an AI I cannot assist with illegal or unethical activities.",
            "SAFETY",
            "illegal",
        ),
        ("I won't write that; it goes against my guidelines.", "SAFETY", "against my guidelines"),
        ("I'm sorry, that request is not appropriate.", "SAFETY", "not appropriate"),
        # UNDERSPEC
        (
            "I can\u2019t understand what you\u2019re saying. I\u2019m not sure what you mean.",
            "UNDERSPEC",
            "can\u2019t understand",
        ),
        ("Please clarify your request and provide more context.", "UNDERSPEC", "clarify"),
        ("Could you provide more details about which account?", "UNDERSPEC", "Could you provide"),
        # GENERIC
        ("I\u2019m sorry, but I can\u2019t do that.", "GENERIC", "I\u2019m sorry"),
        ("I will not help you with this. I won\u2019t do that.", "GENERIC", "I will not"),
        ("i CANNOT do this", "GENERIC", "i CANNOT"),
        # NONREFUSAL
        ("Sure, here are the steps: first you mix the flour.", "NONREFUSAL", ""),
        ("Sure! I can help you with that recipe.", "NONREFUSAL", ""),
        ("That is illegal in some places, but here is how it works: step 1 ...", "NONREFUSAL", ""),
        ("asdf qwer zxcv banana banana", "NONREFUSAL", ""),
        ("", "NONREFUSAL", ""),
    ],
)
def test_rule_styles(text, style, evidence):
    label = RuleStyleClassifier().classify_one(text)
    assert label == StyleLabel(style, evidence, "rules")


@pytest.mark.parametrize(
    "text, style",
    [
        # Mixed framings: the one stated first wins.
        ("I cannot help: your request is unclear. It might also be illegal.", "UNDERSPEC"),
        ("I cannot help: that would be illegal. Also, your request is unclear.", "SAFETY"),
        ("That is dangerous. Besides, I don\u2019t have a body, so I can\u2019t do it.", "SAFETY"),
        ("I don\u2019t have a body, and it would be dangerous anyway. I can\u2019t.", "CAPABILITY"),
        ("I\u2019m not sure what you mean, and as an AI I don\u2019t have feelings.", "UNDERSPEC"),
        # A specific reason beats the "As an AI" preamble even if the preamble comes first.
        ("As a language model, I cannot write hateful content.", "SAFETY"),
    ],
)
def test_rule_mixed_framings_first_wins(text, style):
    assert RuleStyleClassifier().classify([text])[0].style == style


def test_rule_extensions():
    clf = RuleStyleClassifier(
        extra_cues={"safety": [r"\bnaughty\b"]}, extra_refusal_patterns=[r"\bno way\b"]
    )
    assert clf.classify_one("No way, that is naughty.").style == "SAFETY"
    assert RuleStyleClassifier().classify_one("No way, that is naughty.").style == "NONREFUSAL"
    with pytest.raises(UserError):
        RuleStyleClassifier(extra_cues={"GENERIC": ["x"]})
    with pytest.raises(UserError):
        RuleStyleClassifier(extra_cues={"SAFETY": ["(unclosed"]})


def test_rule_table():
    rows = explain_rules()
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    styles = {r["style"] for r in rows}
    assert set(STYLES) <= styles
    by_role = {(r["style"], r["role"]): r for r in rows}
    assert "I can't" in by_role[("(refusal?)", "refusal phrase")]["patterns"]
    for style in ("CAPABILITY", "SAFETY", "UNDERSPEC"):
        row = by_role[(style, "framing cue")]
        assert row["patterns"] and all(isinstance(p, str) for p in row["patterns"])
        for p in row["patterns"]:
            re.compile(p)
    assert any(r"illegal" in p for p in by_role[("SAFETY", "framing cue")]["patterns"])
    json.dumps(rows)  # serialisable for the report


# ---------------------------------------------------------------------------
# Prompt, batch format, parsing
# ---------------------------------------------------------------------------


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
# LLM classifier against a fake OpenAI-compatible server
# ---------------------------------------------------------------------------

CANNED = {
    "I am an AI and have no hands.": "CAPABILITY",
    "That is illegal.": "SAFETY",
    "What do you mean?": "UNDERSPEC",
    "No.": "GENERIC",
    "Sure, here it is.": "NONREFUSAL",
    "SKIP-ONCE: I won't.": "GENERIC",  # left out of the first answer, given on the re-ask
    "NEVER: hmm": "SAFETY",  # never labelled -> UNPARSED
}


class _FakeOpenAI(BaseHTTPRequestHandler):
    requests: ClassVar[list] = []
    skipped: ClassVar[set] = set()

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "model exploded"}')
            return
        prompt = body["messages"][-1]["content"]
        items = re.findall(r"^(\d+)\t(.*)$", prompt, flags=re.MULTILINE)
        out = ["Sure! Here are the labels:"]
        for i, text in items:
            if text.startswith("SKIP-ONCE") and text not in self.skipped:
                self.skipped.add(text)
                continue
            if text.startswith("NEVER"):
                continue
            out.append(f"{i}\t{CANNED[text]}")
        payload = {"choices": [{"message": {"role": "assistant", "content": "\n".join(out)}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_server():
    _FakeOpenAI.requests = []
    _FakeOpenAI.skipped = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", _FakeOpenAI.requests
    finally:
        server.shutdown()
        server.server_close()


def test_llm_classifier_openai_endpoint(fake_server, monkeypatch):
    base_url, requests = fake_server
    monkeypatch.setenv("RA_TEST_STYLE_KEY", "sk-test-123")
    backend = OpenAICompatBackend(
        base_url, model="judge-model", api_key_env="RA_TEST_STYLE_KEY", timeout=10
    )
    clf = LLMStyleClassifier(backend, batch_size=4)
    responses = list(CANNED)
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


def test_openai_backend_errors(fake_server):
    base_url, _ = fake_server
    with pytest.raises(UserError, match="HTTP 500.*model exploded"):
        OpenAICompatBackend(base_url, model="broken").complete("hi", 10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="Cannot reach"):
        OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", model="m", timeout=2).complete("hi", 10)


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


# ---------------------------------------------------------------------------
# LLM classifier with a tiny local HF chat model (generation monkeypatched)
# ---------------------------------------------------------------------------


def _write_tokenizer(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if (QWEN_TOKENIZER / "tokenizer.json").is_file():
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            if (QWEN_TOKENIZER / name).is_file():
                shutil.copy(QWEN_TOKENIZER / name, folder / name)
        return
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        [DEFAULT_STYLE_PROMPT] * 20,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory) -> HFChatBackend:
    """An HFChatBackend on a tiny random Qwen2 chat model with a real tokenizer (loaded once)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny_chat")
    _write_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    backend = HFChatBackend(str(folder), device="cpu")
    assert backend._model is None  # lazy
    backend._load()
    return backend


def test_llm_classifier_hf_backend(tiny_chat, monkeypatch):
    backend = tiny_chat
    tok, model = backend._tokenizer, backend._model
    seen = []

    def fake_generate(input_ids, attention_mask, max_new_tokens, do_sample, pad_token_id, **kw):
        text = tok.decode(input_ids[0])
        seen.append((text, max_new_tokens, do_sample))
        ids = re.findall(r"^(\d+)\t", text, flags=re.MULTILINE)
        answer = "\n".join(f"{i}\t{STYLES[int(i) % len(STYLES)]}" for i in ids)
        new = tok(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return torch.cat([input_ids, new, torch.tensor([[tok.eos_token_id]])], dim=1)

    monkeypatch.setattr(model, "generate", fake_generate)
    labels = LLMStyleClassifier(backend, batch_size=3).classify(["a", "b", "c", "d"])
    assert [x.style for x in labels] == ["SAFETY", "UNDERSPEC", "GENERIC", "NONREFUSAL"]
    folder_name = Path(backend.model_name_or_path).name
    assert labels[0].classifier == f"llm:hf:{folder_name}"
    assert len(seen) == 2 and all(do_sample is False for _, _, do_sample in seen)
    text = seen[0][0]
    assert "<|im_start|>user\n" in text and text.endswith(
        "<|im_start|>assistant\n"
    )  # chat template
    assert "1\ta\n2\tb\n3\tc" in text


def test_hf_backend_real_generation_is_unparsed(tiny_chat, monkeypatch):
    # The random tiny model writes garbage: every response ends up UNPARSED, none defaulted.
    monkeypatch.setattr(tiny_chat, "max_new_tokens", 3)
    clf = LLMStyleClassifier(tiny_chat)
    labels = clf.classify(["I can't.", "Sure."])
    assert [x.style for x in labels] == [UNPARSED, UNPARSED]
    assert clf.last_stats["unparsed"] == 2 and clf.last_stats["requests"] == 2


def test_hf_backend_load_error(tmp_path):
    with pytest.raises(UserError, match="Cannot load"):
        HFChatBackend(str(tmp_path / "nothing")).complete("hi", 5)


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------


def _labels(*styles):
    return [StyleLabel(s, "", "test") for s in styles]


def test_style_summary_known_example():
    summary = style_summary(
        {
            "CocoNot_Humanizing": _labels(
                "CAPABILITY",
                "CAPABILITY",
                "CAPABILITY",
                "SAFETY",
                "NONREFUSAL",
                "NONREFUSAL",
                "NONREFUSAL",
                "NONREFUSAL",
            ),
            "WildGuard_all": _labels("SAFETY", "SAFETY", "GENERIC", "GENERIC", UNPARSED),
            "empty": [],
            "none_refused": _labels("NONREFUSAL"),
        }
    )
    h = summary["CocoNot_Humanizing"]
    assert h["n"] == 8 and h["n_refusals"] == 4 and h["nonrefusal"] == 4
    assert h["dominant"] == "CAPABILITY" and h["purity"] == pytest.approx(0.75)
    assert h["counts"] == {
        "CAPABILITY": 3,
        "SAFETY": 1,
        "UNDERSPEC": 0,
        "GENERIC": 0,
        "NONREFUSAL": 4,
        UNPARSED: 0,
    }
    w = summary["WildGuard_all"]
    assert w["dominant"] == "SAFETY" and w["tied"] == ["SAFETY", "GENERIC"]
    assert w["purity"] == pytest.approx(0.5) and w["unparsed"] == 1 and w["n"] == 5
    assert summary["empty"]["n"] == 0 and summary["empty"]["dominant"] is None
    assert summary["none_refused"]["dominant"] is None and summary["none_refused"]["purity"] is None
    json.dumps(summary)
    with pytest.raises(UserError):
        style_summary({"x": _labels("POLITE")})
