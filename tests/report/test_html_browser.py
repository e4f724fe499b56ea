"""report.html in headless Chromium.

The browser test drives Chromium over the DevTools protocol (``--remote-debugging-pipe``,
standard library only) and records every console error, uncaught exception, browser log
error (CSP violations, failed loads), JavaScript dialog and non-local network request;
``test_browser_probe_detects_a_broken_page`` proves that each of these is caught.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from refusal_atlas.report import SECTION_IDS

from .conftest import XSS_IMG, XSS_SCRIPT


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _high_fd(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered 10 or higher (``fd`` is closed)."""
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        # pipe ends at fd >= 10, so that dup2 onto 3 / 4 in the child never hits one of them
        cmd_r, self._cmd_w = (_high_fd(fd) for fd in os.pipe())
        self._out_r, out_w = (_high_fd(fd) for fd in os.pipe())

        def wire_fds():  # in the child, before exec: the protocol pipe on fds 3 and 4
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "about:blank"]
        # preexec_fn only calls os.dup2 (async-signal-safe), so forking with threads is fine
        self.proc = subprocess.Popen(args, preexec_fn=wire_fds, close_fds=False,  # noqa: PLW1509
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._queue: queue.Queue = queue.Queue()
        self._next_id = 0
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        page = next(t for t in self.call("Target.getTargets")["targetInfos"]
                    if t["type"] == "page")
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._out_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._queue.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._queue.put(json.loads(msg))

    def _next(self, deadline: float) -> dict:
        msg = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
        if msg is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        if msg.get("method") == "Page.javascriptDialogOpening":  # never leave a dialog open
            self._send("Page.handleJavaScriptDialog", {"accept": True}, True)
        return msg

    def _send(self, method: str, params: dict | None, session: bool) -> int:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        mid = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._next(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def load(self, path: Path, settle: float = 0.5) -> dict:
        """Open ``path``; return what the page did: errors, dialogs, requests, a DOM probe."""
        self.events = []
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            msg = self._next(deadline)
            if "method" in msg:
                self.events.append(msg)
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                msg = self._next(end)
            except queue.Empty:
                break
            if "method" in msg:
                self.events.append(msg)
        probe = self.call("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                          session=True)["result"]["value"]
        return {"errors": console_errors(self.events), "probe": json.loads(probe),
                "dialogs": [e["params"].get("message") for e in self.events
                            if e.get("method") == "Page.javascriptDialogOpening"],
                "requests": [e["params"]["request"]["url"] for e in self.events
                             if e.get("method") == "Network.requestWillBeSent"]}

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self._send("Browser.close", None, False)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._cmd_w)


PROBE = """document.querySelectorAll('details').forEach(function (d) { d.open = true; });
JSON.stringify({
  title: document.title,
  xss: window.__xss || null,
  sections: Array.from(document.querySelectorAll('section[id]')).map(function (s) {
    return {id: s.id, height: s.getBoundingClientRect().height,
            heading: (s.querySelector('h2') || {}).textContent || ''}; }),
  scripts: document.scripts.length,
  imgX: document.querySelectorAll('img[src="x"]').length,
  text: document.body ? document.body.innerText : '',
  images: Array.from(document.images).map(function (i) {
    return {ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 40)}; })
})"""


def console_errors(events: list[dict]) -> list[str]:
    """Console errors/asserts, uncaught exceptions and browser log errors (CSP, failed loads)."""
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                              for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + (d.get("exception", {}).get("description")
                                        or d.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')}")
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (CI installs Debian's `chromium`; "
                    "apt-get install -y chromium)")
    b = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_browser_probe_detects_a_broken_page(browser, rendered, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!doctype html><html><head><title>broken</title></head><body>"
        "<section id='summary'><h2>x</h2></section>"
        "<script>console.error('deliberate console error')</script>"
        "<script>throw new Error('deliberate exception')</script>"
        "<script>alert('deliberate dialog')</script>"
        "<img src='http://127.0.0.1:9/external.png'>"
        "</body></html>")
    got = browser.load(broken)
    errors = " | ".join(got["errors"])
    assert "deliberate console error" in errors
    assert "deliberate exception" in errors
    assert "Failed to load resource" in errors  # the external image
    assert got["dialogs"] == ["deliberate dialog"]
    assert "http://127.0.0.1:9/external.png" in got["requests"]
    # an unescaped generation in the real report would be blocked by its CSP and reported
    page = rendered[0].read_text(encoding="utf-8")
    injected = tmp_path / "injected.html"
    injected.write_text(page.replace("</main>", XSS_SCRIPT + "</main>", 1), encoding="utf-8")
    got = browser.load(injected)
    assert got["probe"]["title"] != "XSS" and got["probe"]["xss"] is None
    assert any("Content Security Policy" in e for e in got["errors"]), got["errors"]


def test_report_renders_in_chromium(browser, rendered, data):
    got = browser.load(rendered[0])
    assert got["errors"] == []
    assert got["dialogs"] == []
    local = [u for u in got["requests"] if not u.startswith(("file:", "data:"))]
    assert local == [], local
    probe = got["probe"]
    sections = {s["id"]: s for s in probe["sections"]}
    assert list(sections) == list(SECTION_IDS)
    assert all(s["height"] > 20 and s["heading"] for s in sections.values()), sections
    # the injected generation did not run and is shown as text
    assert probe["title"] == data["title"] and probe["xss"] is None
    assert probe["scripts"] == 1 and probe["imgX"] == 0
    assert XSS_SCRIPT in probe["text"] and XSS_IMG in probe["text"]
    # every embedded figure decodes
    assert len(probe["images"]) >= 8 and all(i["ok"] for i in probe["images"]), probe["images"]
    for fd in data["findings"]:
        assert fd["status"] in probe["text"]
    # the page's own script runs (the CSP lets exactly it through): the sample filter works
    visible = ("Array.from(document.querySelectorAll('#samples details.cond'))"
               ".filter(function (d) { return !d.hidden; }).length")
    n_all = browser.evaluate(visible)
    n_ablate = len([c for g in data["samples"]["stages"] if g["stage"] == "ablation"
                    for c in g["conditions"] if c["id"].startswith("ablate/")])
    browser.evaluate("var q = document.getElementById('sample-filter'); q.value = 'ablate/'; "
                     "q.dispatchEvent(new Event('input'))")
    assert n_all > browser.evaluate(visible) == n_ablate == 3
    assert console_errors(browser.events) == []
