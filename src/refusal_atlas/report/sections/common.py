"""What every section builder needs: tolerant artifact reads, figure references and the
"not run: ..." note for a stage that is not done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

__all__ = ["figure", "not_run", "read_json_or_none", "stage_artifact"]


def read_json_or_none(path: Path) -> Any:
    """A JSON artifact, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def figure(run_dir: Path, rel: str, caption: str) -> dict | None:
    """A figure reference ``{path, caption, bytes}`` when ``run_dir / rel`` exists, else None.

    The HTML renderer finds figures by these three keys and embeds them.
    """
    path = run_dir / rel
    if not path.is_file():
        return None
    return {"path": rel, "caption": caption, "bytes": path.stat().st_size}


def not_run(states: Mapping[str, dict], *names: str) -> str | None:
    """None when every stage is done, else "not run: ..." for the first one that is not."""
    for name in names:
        st = states.get(name)
        if st is None:
            return f"not run: this refusal-atlas has no stage {name!r}"
        if st["status"] != "done":
            return f"not run: {name}: {st['reason']}"
    return None


def stage_artifact(run_dir: Path, states: Mapping[str, dict], rel: str, *stages: str
                   ) -> tuple[dict | None, str | None]:
    """``(artifact, None)`` for a stage's JSON object ``run_dir / rel``, or ``(None, reason)``
    ("not run: ...") when a stage it needs is not done or the file is missing or not an object.

    Args:
        run_dir: the run folder.
        states: each stage's state.
        rel: the artifact's path in the run folder.
        stages: the stages that must be done (default: the folder ``rel`` is in).
    """
    reason = not_run(states, *(stages or (rel.split("/")[0],)))
    artifact = read_json_or_none(run_dir / rel)
    if reason or not isinstance(artifact, dict):
        return None, reason or f"not run: {rel} missing"
    return artifact, None
