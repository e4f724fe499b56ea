"""A suite snapshot: the exact prompts a run used, as ``prompts.jsonl`` + ``suite.json``.

A resumed or re-read run reads the snapshot and never the sources again, so later edits
to a dataset cannot change what an old run studied.
"""

from __future__ import annotations

import json
from pathlib import Path

from .prompts import Prompt, PromptSuite

SNAPSHOT_PROMPTS = "prompts.jsonl"
SNAPSHOT_SUITE = "suite.json"


def write_suite_snapshot(suite: PromptSuite, out_dir: Path) -> dict:
    """Write ``suite`` to ``out_dir`` (atomically) and return its summary.

    The summary is the suite's :meth:`~PromptSuite.summary` plus its fingerprint and the
    order of its splits and pools, which :func:`read_suite_snapshot` restores.

    Args:
        suite: the suite.
        out_dir: an existing folder.

    Example:
        >>> summary = write_suite_snapshot(load_suite("demo"), Path("snap"))  # doctest: +SKIP
    """
    # artifacts imports torch; keep `import refusal_atlas.data` (suite listing, prompt-only
    # tools) free of it.
    from ..artifacts import atomic_path, write_json

    with atomic_path(out_dir / SNAPSHOT_PROMPTS) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for p in suite.all_prompts():
                fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    summary = {**suite.summary(), "fingerprint": suite.fingerprint(),
               "split_order": list(suite.splits), "benign_order": list(suite.benign)}
    write_json(out_dir / SNAPSHOT_SUITE, summary)
    return summary


def read_suite_snapshot(out_dir: Path) -> PromptSuite:
    """The suite that :func:`write_suite_snapshot` wrote to ``out_dir``, in the same order.

    Example:
        >>> suite = read_suite_snapshot(Path("snap"))  # doctest: +SKIP
    """
    from ..artifacts import read_json, read_jsonl  # torch: see write_suite_snapshot

    meta = read_json(Path(out_dir) / SNAPSHOT_SUITE)
    prompts = [Prompt.from_dict(r) for r in read_jsonl(Path(out_dir) / SNAPSHOT_PROMPTS)]
    splits: dict[str, list[Prompt]] = {s: [] for s in meta["split_order"]}
    benign: dict[str, list[Prompt]] = {b: [] for b in meta["benign_order"]}
    for p in prompts:
        (splits if p.harmful else benign)[p.split].append(p)
    return PromptSuite(name=meta["name"], splits=splits, benign=benign,
                       benign_for=dict(meta["benign_for"]))
