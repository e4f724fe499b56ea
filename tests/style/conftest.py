"""Shared fixtures of the style tests: no progress bars, a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_NO_PROGRESS", "1")


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




@pytest.fixture
def canned() -> dict[str, str]:
    """The responses the fake server knows, with the label it answers for each."""
    return dict(CANNED)
