"""One process per run folder: ``RUN/.lock`` holds the holder's pid and host.

Two processes writing one run folder would append every row of the resumable stores
twice. A lock left by a process that is gone (same host, pid not running) is taken over;
a live holder, or one on another host (whose pid cannot be checked from here), is refused
with one line.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import UserError

LOCK_FILE = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir): ...`` holds the run folder for this process."""

    def __init__(self, root: str | Path):
        self.path = Path(root) / LOCK_FILE
        self.me = {"pid": os.getpid(), "host": socket.gethostname()}
        self._held = False
        self._created = False

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: treat as stale

    def _stale(self, holder: dict) -> bool:
        pid, host = holder.get("pid"), holder.get("host")
        if not isinstance(pid, int) or host is None:
            return True
        return host == self.me["host"] and (pid == self.me["pid"] or not _alive(pid))

    def acquire(self) -> None:
        self._created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                # O_EXCL: of two processes starting together, exactly one creates the file.
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue
                if not self._stale(holder):
                    raise UserError(
                        f"{self.path.parent} is in use by process {holder.get('pid')} on "
                        f"{holder.get('host')}; wait for it to finish (or, if that process is "
                        f"gone, delete {self.path})") from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.me, fh)
            self._held = True
            return
        raise UserError(f"could not take the lock {self.path}; delete it if no run is active")

    def release(self) -> None:
        if self._held and self._holder() == self.me:
            self.path.unlink(missing_ok=True)
            if self._created and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()  # a run refused before its first write leaves nothing
        self._held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
