"""What every section builder needs: tolerant artifact reads, figure references and the
"not run: ..." note for a stage that is not done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["direction_names", "figure", "group_sizes", "named_count", "not_run", "pick",
           "pick_rows", "read_json_or_none", "stage_artifact"]


def read_json_or_none(path: Path) -> Any:
    """A JSON artifact, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pick(d: Any, keys: Sequence[str]) -> dict:
    """Exactly ``keys`` of an artifact's object (None where it lacks one, every key None when
    it is not an object): what the template reads is always there."""
    d = d if isinstance(d, Mapping) else {}
    return {k: d.get(k) for k in keys}


def pick_rows(rows: Any, keys: Sequence[str]) -> list[dict]:
    """:func:`pick` over a list of objects (anything else in the list is dropped)."""
    return [pick(r, keys) for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


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
        if st.get("status") != "done":
            return f"not run: {name}: {st.get('reason') or st.get('status') or 'unknown state'}"
    return None


def direction_names(run_dir: Path) -> list[str] | None:
    """The split names in ``directions/directions.json``, or None without a readable one."""
    d = read_json_or_none(run_dir / "directions" / "directions.json")
    if not isinstance(d, dict) or not isinstance(d.get("directions"), dict):
        return None
    return [str(k) for k in d["directions"]]


def named_count(names: list[str]) -> str:
    """"1 (Alpha)", "2 (Alpha, Beta)" or "none": how many a run has, for reasons."""
    if not names:
        return "none"
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} ({shown})"


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


def group_sizes(test_set: Any) -> dict[str, int]:
    """Prompts per group (HR, HC, BR, BC) of a ``test_set.json``; an empty group is 0."""
    groups = test_set.get("groups") if isinstance(test_set, Mapping) else None
    if not isinstance(groups, Mapping):
        return {}
    return {str(g): len(v) if isinstance(v, (list, tuple)) else 0 for g, v in groups.items()}
