"""One process per run folder (RunLock), with a stale lock taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.pipeline.lock import LOCK_FILE, RunLock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_is_held_and_released(tmp_path):
    with RunLock(tmp_path / "run") as lock:
        holder = json.loads(lock.path.read_text())
        assert holder == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_live_holder_is_refused_with_one_line(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid,
                                                      "host": socket.gethostname()}))
        with pytest.raises(UserError, match=f"in use by process {sleeper.pid}") as err:
            RunLock(tmp_path).acquire()
        assert "\n" not in str(err.value)
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_lock_of_another_host_is_refused(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(UserError, match="on elsewhere"):
        RunLock(tmp_path).acquire()


@pytest.mark.parametrize("content", ["dead", "garbage"])
def test_a_stale_lock_is_taken_over(tmp_path, content):
    stale = json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}) \
        if content == "dead" else "{not json"
    (tmp_path / LOCK_FILE).write_text(stale)
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
