"""The report stage: build_report / render_html / render_markdown on a complete tiny run, the
findings logic, robustness to missing stages, and report.html in headless Chromium.

The browser test drives Chromium over the DevTools protocol (``--remote-debugging-pipe``,
standard library only) and records every console error, uncaught exception, browser log
error (CSP violations, failed loads), JavaScript dialog and non-local network request;
``test_browser_probe_detects_a_broken_page`` proves that each of these is caught.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import markupsafe
import pytest
from conftest import TINY_SETTINGS, write_tiny_suite

from refusal_atlas import report as R

SAE_SETTINGS = [
    "sae.train_steps=20", "sae.train_batch_size=64", "sae.expansion=2", "sae.k=4",
    "sae.train_max_tokens=1500", "sae.top_k=[2,4]", "sae.steer_topk=2",
    "sae.steer_max_splits=2", "sae.steer_alphas=[0,2]", "sae.corpus_oversample=2",
    "steering.alphas=[0,2]", "report.samples_per_condition=3",
]
XSS_SCRIPT = "<script>window.__xss = 1; document.title = 'XSS'; alert(1)</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss = 2; document.title = 'XSS'\">"
PAYLOAD = f"Sure! {XSS_SCRIPT} and {XSS_IMG} & more"


# --------------------------------------------------------------------------- the tiny run


def _has_sae_stages() -> bool:
    from refusal_atlas.pipeline import stages

    return "sae_steering" in stages()


@pytest.fixture(scope="module")
def full_run(tiny_model_dirs, tmp_path_factory):
    """One tiny run through every stage the report reads (SAE stages when they exist), the
    report stage included; then a generation with HTML in it is injected into the steering
    results (rows of the baseline and of every alpha > 0 condition)."""
    from refusal_atlas import sweeps
    from refusal_atlas.config import load_config
    from refusal_atlas.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("report_run")
    suite = write_tiny_suite(root / "suite")
    settings = TINY_SETTINGS + (SAE_SETTINGS if _has_sae_stages() else
                                [s for s in SAE_SETTINGS if not s.startswith("sae.")])
    cfg = load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                           "dtype": "float32"},
                                 "data": {"suite": str(suite)}}, set_values=settings)
    run_dir = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFUSAL_ATLAS_CACHE", str(root / "cache"))
        mp.setattr(sweeps, "GAP_UNCERTAINTY", {"n_boot": 30, "n_perm": 30, "seed": 0})
        run_pipeline(cfg, run_dir, ["report"])
    path = run_dir / "steering" / "results.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for r in rows:
        if r["condition"] == "baseline" or (r.get("alpha") or 0) > 0:
            r["response"] = PAYLOAD
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return cfg, run_dir


@pytest.fixture(scope="module")
def data(full_run):
    return R.build_report(full_run[1])


@pytest.fixture(scope="module")
def rendered(full_run, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    html_path, md_path = R.write_report(full_run[1], out, data=data)
    return html_path, md_path


# --------------------------------------------------------------------------- build_report


def test_report_stage_writes_both_files_and_is_up_to_date(full_run):
    from refusal_atlas.pipeline import RunContext, plan, stages

    cfg, run_dir = full_run
    stage = stages()["report"]
    assert not stage.needs_model
    assert set(stage.deps) == {d for d in R.REPORT_DEPS if d in stages()}
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert (run_dir / "report.md").read_text().startswith("# refusal-atlas")
    done = json.loads((run_dir / "report" / "_done.json").read_text())
    assert done["summary"]["html"] == "report.html" and done["summary"]["problems"] == []
    assert set(done["summary"]["findings"]) == {"geometry", "one_knob", "sae"}
    assert (run_dir / "report" / "findings.json").exists()
    statuses = {p.name: p.status for p in plan(RunContext(cfg, run_dir), ["report"])}
    assert set(statuses.values()) == {"done"}
    changed = cfg.model_copy(deep=True)
    changed.report.samples_per_condition = 1
    statuses = {p.name: p.status for p in plan(RunContext(changed, run_dir), ["report"])}
    assert [n for n, s in statuses.items() if s != "done"] == ["report"]


def test_build_report_is_json_ready_and_complete(data):
    json.dumps(data)  # JSON-ready
    assert data["problems"] == []
    s = data["summary"]
    assert s["model"].endswith("qwen2") and s["layer"] is not None and s["position"] == -2
    assert s["labels_judge"] == "marker" and s["steering_judge"] == "marker"
    assert s["n_splits"] == 3 and s["test_set"] == {"HR": 2, "HC": 2, "BR": 2, "BC": 2}
    assert {t["stage"] for t in s["timings"]} >= {"labels", "geometry", "steering", "ablation"}
    for key in ("pools", "layer_scan", "geometry", "steering", "ablation", "style", "samples"):
        assert data[key]["available"], (key, data[key].get("reason"))
    assert data["geometry"]["names"] == ["Alpha", "Beta", "Gamma"]
    assert [r["label"] for r in data["steering"]["table"]["rows"]] == ["Alpha", "Beta", "Gamma"]
    assert data["steering"]["table"]["alpha_keys"] == ["0", "2"]
    assert data["steering"]["gap"]["value"] == 0.0 and data["steering"]["gap"]["p_value"] == 1.0
    assert [r["direction"] for r in data["ablation"]["rows"]] == ["Alpha", "Beta", "Gamma"]
    if _has_sae_stages():
        sae = data["sae"]
        assert sae["available"] and sae["steering"]["available"]
        assert sae["core_size"] == len(sae["core"]) and sae["tail_size"] >= 0
        assert sae["steering"]["comparison"]["gaps"]
    # samples: 3 per condition, the same prompts in every condition, alpha = 0 aliases skipped
    steer = next(g for g in data["samples"]["stages"] if g["stage"] == "steering")
    ids = [c["id"] for c in steer["conditions"]]
    assert ids[0] == "baseline" and all("a=0" not in c for c in ids)
    assert steer["aliased"] == ["steer/Alpha/a=0", "steer/Beta/a=0", "steer/Gamma/a=0"]
    picked = [[x["prompt_id"] for x in c["samples"]] for c in steer["conditions"]]
    assert all(len(p) == 3 and p == picked[0] for p in picked)
    groups = [x["group"] for x in steer["conditions"][0]["samples"]]
    assert groups == ["HR", "HC", "BR"]  # spread over the base labels
    # every figure that exists is referenced with its artifact path
    paths = {f["path"] for f in R._collect_figures(data)}
    assert {"geometry/cosine_heatmap.png", "geometry/mds.png", "steering/tradeoff.png",
            "steering/dose_response.png", "ablation/ablation.png",
            "layer_scan/layer_scan.png"} <= paths


def test_findings_come_from_the_numbers(data):
    by_id = {f["id"]: f for f in data["findings"]}
    assert list(by_id) == ["geometry", "one_knob", "sae"]
    for f in data["findings"]:
        assert f["status"] in ("agrees with the paper", "partly agrees with the paper",
                               "does not agree with the paper", "inconclusive",
                               "not measured in this run")
        for c in f["checks"]:
            assert c["source"] and c["criterion"] and c["measured"]
    # the marker judge ignores the steering, so RR never moves: the trade-off was not probed
    assert by_id["one_knob"]["status"] == "inconclusive"
    assert any("barely probed" in t for t in by_id["one_knob"]["text"])
    # three splits and no CoCoNot: the paper's two-cluster test is said to be not applicable
    assert any("CoCoNot" in t and "not checked" in t for t in by_id["geometry"]["text"])
    if not _has_sae_stages():
        assert by_id["sae"]["status"] == "not measured in this run"


def _geo(names, k2, sil2, best_k, distinct=(10, 10)):
    clusters = [[n for n, c in zip(names, k2) if c == i] for i in range(max(k2) + 1)]
    return {"available": True, "names": names, "primary_linkage": "average", "ks": [2, 3],
            "best_k": best_k, "clusters_by_k": {"2": clusters},
            "silhouette": [{"k": 2, "average": sil2}, {"k": 3, "average": 0.1}],
            "summary": {"min_offdiag_cosine": -0.05, "max_offdiag_cosine": 0.9,
                        "min_pair": names[:2], "max_pair": names[1:3], "best_silhouette": sil2},
            "bootstrap": {"distinct_pairs": {"n_pairs": distinct[1], "n_distinct": distinct[0]}}}


def test_geometry_finding_agrees_or_not_with_the_paper():
    names = list(R.COCONOT_NON_SAFETY) + ["WildGuard_all", "XSTest_all", "CocoNot_Safety"]
    paper_like = R._finding_geometry(_geo(names, [0, 0, 0, 0, 1, 1, 1], 0.46, 2), "m")
    assert paper_like["status"] == "agrees with the paper"
    other = R._finding_geometry(_geo(names, [0, 1, 0, 1, 0, 1, 1], 0.05, 3, (1, 10)), "m")
    assert other["status"] == "does not agree with the paper"
    mixed = R._finding_geometry(_geo(names, [0, 0, 0, 0, 1, 1, 1], 0.2, 2), "m")
    assert mixed["status"] == "partly agrees with the paper"
    assert R._finding_geometry({"available": False, "reason": "not run: x"}, "m")["status"] == \
        "not measured in this run"


def _steer(spans, p_value, gap=0.05):
    rows = [{"label": f"d{i}", "cells": {"0": {"rr": 0.5, "orr": 0.5},
                                         "10": {"rr": 0.5 + s, "orr": 0.6}},
             "top_alpha": 10.0, "top_rr": 0.5 + s, "top_orr": 0.6, "zero_rr": 0.5,
             "zero_orr": 0.5, "rr_span": s} for i, s in enumerate(spans)]
    return {"available": True, "judge": "j", "baseline": {"rr": 0.5, "orr": 0.5},
            "table": {"alpha_keys": ["0", "10"], "rows": rows},
            "gap": {"value": gap, "pair": ["d0", "d1"], "at_rr": 0.7, "n_pairs": 1,
                    "mean_over_pairs": gap, "ci95": [0.0, 0.2], "p_value": p_value,
                    "null_mean": 0.04, "null_95": 0.1}}


def test_one_knob_finding_follows_the_permutation_test():
    assert R._finding_one_knob(_steer([0.4, 0.3], 0.6))["status"] == "agrees with the paper"
    assert R._finding_one_knob(_steer([0.4, 0.3], 0.01, 0.4))["status"] == \
        "does not agree with the paper"
    assert R._finding_one_knob(_steer([0.0, 0.02], 0.6))["status"] == "inconclusive"
    text = " ".join(R._finding_one_knob(_steer([0.4, 0.3], 0.01, 0.4))["text"])
    assert "0.400" in text and "p = 0.010" in text and "0.000–0.200" in text


def test_sae_finding_from_core_and_tail_sizes():
    base = {"available": True, "core_k": 50, "core_min_splits": 6, "splits": ["a"] * 11,
            "distinct": 300, "shared_size": 20, "steering": {"available": False, "reason": "x"}}
    assert R._finding_sae({**base, "core_size": 5, "tail_size": 200}, {})["status"] == \
        "agrees with the paper"
    assert R._finding_sae({**base, "core_size": 0, "tail_size": 3}, {})["status"] == \
        "partly agrees with the paper"
    assert R._finding_sae({**base, "core_size": 0, "tail_size": 0}, {})["status"] == \
        "does not agree with the paper"


# --------------------------------------------------------------------------- rendering


def test_html_escapes_model_text_and_is_self_contained(rendered, data):
    page = rendered[0].read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__xss = 1;" in page
    assert "&lt;img src=x onerror=" in page
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert page.count("<script") == 1  # the page's own filter script only
    # no external resource: every src/href is a data: URI or an in-page anchor
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), \
        [r for r in refs if not r.startswith(("data:", "#"))]
    assert "<link rel=\"stylesheet\"" not in page and "@import" not in page
    assert f'content="{markupsafe.escape(R.CSP)}"' in page
    n_figs = len(R._collect_figures(data))
    assert page.count('src="data:image/png;base64,') == n_figs >= 8
    for sid in R.SECTION_IDS:
        assert f'<section id="{sid}">' in page
    # traceability: artifact names next to the numbers
    for src in ("geometry/geometry.json", "steering/metrics.json", "ablation/metrics.json",
                "style/summary.json", "test_set/pool_report.json", "steering/results.jsonl"):
        assert src in page, src
    assert len(page) < 3_000_000


def test_markdown_summary(rendered, data):
    md = rendered[1].read_text(encoding="utf-8")
    assert md.startswith("# refusal-atlas")
    for heading in ("## Findings", "## Geometry", "## Steering", "## Ablation",
                    "## SAE latents", "## Refusal style", "## Timings"):
        assert heading in md
    for f in data["findings"]:
        assert f["status"] in md
    assert "<script" not in md and "<img" not in md
    assert "`steering/metrics.json`" in md


def test_missing_disabled_and_broken_stages_never_crash(full_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(full_run[1], run_dir)
    for stage in ("steering", "style", "sae", "sae_analysis", "sae_steering"):
        shutil.rmtree(run_dir / stage, ignore_errors=True)
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["sae"]["enabled"] = False
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "ablation" / "metrics.json").write_text("{not json")
    (run_dir / "geometry" / "mds.png").write_bytes(b"not a png")
    d = R.build_report(run_dir)
    assert d["steering"] == {"available": False, "reason": "not run: steering: the stage has not "
                             "run in this run folder (steering/_done.json missing)"}
    assert "disabled" in d["sae"]["reason"] and "sae.enabled = false" in d["sae"]["reason"]
    assert d["ablation"]["available"] is False and "ablation/metrics.json" in d["ablation"]["reason"]
    assert d["style"]["reason"].startswith("not run: style")
    by_id = {f["id"]: f for f in d["findings"]}
    assert by_id["one_knob"]["status"] == "not measured in this run"
    assert by_id["sae"]["status"] == "not measured in this run"
    assert by_id["geometry"]["status"] != "not measured in this run"
    page = R.render_html(d)
    assert page.count("not run: ") >= 4
    assert "figure <code>geometry/mds.png</code> could not be read" in page
    md = R.render_markdown(d)
    assert "not run: steering" in md
    assert "samples_per_condition = 0" in R.render_html(R.build_report(run_dir,
                                                                      samples_per_condition=0))
    # a run folder with nothing in it still renders
    empty = tmp_path / "empty"
    empty.mkdir()
    html_path, md_path = R.write_report(empty)
    assert html_path.exists() and md_path.exists()
    assert all(f["status"] == "not measured in this run" for f in R.build_report(empty)["findings"])


# --------------------------------------------------------------------------- headless Chromium


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
    assert list(sections) == list(R.SECTION_IDS)
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
