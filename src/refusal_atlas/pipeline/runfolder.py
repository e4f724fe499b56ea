"""A run folder: one sub-folder per stage, each with completion markers.

``<stage>/_started.json`` records the fingerprint a stage began under; ``_done.json``
records that it finished (fingerprint, completion id, time taken, summary). A stage is
done when ``_done.json`` exists and its fingerprint matches what the current config and
upstream completions produce. A stage found started under another fingerprint has its
folder cleared before it runs again; one started under the same fingerprint resumes
(stages keep per-unit progress in their own folder), and so does one whose stores were
made under the same ``keep`` fingerprint (:attr:`~.stage.Stage.keeps`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..artifacts import read_json, write_json

CONFIG_FILE = "config.json"


def fingerprint(settings: Any, upstream: dict[str, str | None]) -> str:
    payload = json.dumps({"settings": settings, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def dir(self, stage: str) -> Path:
        return self.root / stage

    def done_marker(self, stage: str) -> dict | None:
        path = self.dir(stage) / "_done.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None

    def is_done(self, stage: str, fp: str) -> bool:
        marker = self.done_marker(stage)
        return marker is not None and marker.get("fingerprint") == fp

    def completion_id(self, stage: str) -> str | None:
        marker = self.done_marker(stage)
        return marker.get("completion_id") if marker else None

    def started_fingerprint(self, stage: str) -> str | None:
        path = self.dir(stage) / "_started.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text()).get("fingerprint")
        except json.JSONDecodeError:
            return None

    def kept(self, stage: str, keep: str | None) -> bool:
        """The stage's folder was started with the same ``keep`` fingerprint (the settings
        its stores depend on), or under that fingerprint itself (a run whose settings were
        its stores' alone): a run under other settings may resume from its stores."""
        if keep is None:
            return False
        started = self._started(stage)
        return started.get("keep", started.get("fingerprint")) == keep

    def begin(self, stage: str, fp: str, keep: str | None = None) -> tuple[Path, bool]:
        """Prepare the stage folder; returns (folder, resuming). A folder started under
        another fingerprint is cleared, unless it was started with the same ``keep``
        fingerprint: then its stores stay and only its completion marker goes."""
        folder = self.dir(stage)
        resuming = self.started_fingerprint(stage) == fp and self.done_marker(stage) is None
        kept = not resuming and self.kept(stage, keep)
        if folder.exists() and not (resuming or kept):
            shutil.rmtree(folder)
        if kept:
            self.invalidate(stage)
        folder.mkdir(parents=True, exist_ok=True)
        if not resuming:
            write_json(folder / "_started.json", {"fingerprint": fp, "started_at": _now(),
                                                  **({"keep": keep} if keep else {})})
        return folder, resuming or kept

    def _started(self, stage: str) -> dict:
        try:
            data = read_json(self.dir(stage) / "_started.json")
        except Exception:  # noqa: BLE001 - a missing or torn marker: no earlier attempt
            return {}
        return data if isinstance(data, dict) else {}

    def add_attempt(self, stage: str, seconds: float) -> None:
        """An attempt of ``stage`` ended before finishing (Ctrl-C, an error): its time counts
        towards the stage's total when it finishes in a later attempt."""
        started = self._started(stage)
        if not started:
            return
        started["earlier_seconds"] = round(float(started.get("earlier_seconds", 0.0)) + seconds, 2)
        started["earlier_attempts"] = int(started.get("earlier_attempts", 0)) + 1
        write_json(self.dir(stage) / "_started.json", started)

    def finish(self, stage: str, fp: str, summary: dict, seconds: float,
               outputs: dict[str, dict] | None = None) -> dict:
        """Mark ``stage`` done; ``seconds`` is this attempt's time, earlier attempts' added."""
        started = self._started(stage)
        total = seconds + float(started.get("earlier_seconds", 0.0))
        marker = {"fingerprint": fp, "completion_id": uuid.uuid4().hex[:12],
                  "finished_at": _now(), "seconds": round(total, 2),
                  "attempts": int(started.get("earlier_attempts", 0)) + 1,
                  "summary": summary, "outputs": outputs or {}}
        write_json(self.dir(stage) / "_done.json", marker)
        return marker

    def invalidate(self, stage: str) -> None:
        for name in ("_done.json",):
            path = self.dir(stage) / name
            if path.exists():
                path.unlink()

    def timings(self) -> dict[str, float]:
        out = {}
        for marker_path in sorted(self.root.glob("*/_done.json")):
            try:
                out[marker_path.parent.name] = float(read_json(marker_path).get("seconds", 0.0))
            except Exception:  # noqa: BLE001
                continue
        return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
