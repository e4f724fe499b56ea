"""The paper's released prompt files: its split subsets, controlled test set and training pools.

They live in the shared data's ``paper/`` folder (``sources/``, ``controlled_test_set/``,
``training_pools/``); see ``docs/data.md``. Ids are ``paper/<file stem>/<dataset>-<idx>``
and ``paper/controlled_test_set/<label>/<row>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import shared_data_dir
from .prompts import Prompt
from .records import clean, read_records
from .sources.base import SourceRow, build_prompts
from .splits import BENIGN_GENERAL

PAPER_BENIGN_FILE = "_BC_source.json"
PAPER_CONTROLLED_FILES = {
    "HR": "harmful_refusals_50.json",
    "HC": "harmful_compliance_50.json",
    "BR": "unharmful_refusals_50.json",
    "BC": "unharmful_compliance_50.json",
}


# --------------------------------------------------------------------------- sources/*.json


def is_paper_records(rows: list[dict[str, Any]]) -> bool:
    """True if rows look like the paper's ``sources/*.json`` records."""
    return bool(rows) and all(
        "prompt" in r and "prompt_harm_label" in r and isinstance(r.get("source"), dict)
        and "dataset" in r["source"] and "idx" in r["source"] for r in rows)


def paper_sources_dir(path: str | Path | None = None) -> Path:
    """Resolve the folder of the paper's ``<split>.json`` files.

    Accepts the ``sources`` folder itself, its parent (``paper/``) or the shared data
    root (which holds ``paper/sources``); default: the shared data folder.
    """
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError("the paper's released subsets are not available: set "
                            "REFUSAL_ATLAS_SHARED_DATA or pass the folder holding paper/sources")
        path = shared
    p = Path(path).expanduser()
    for cand in (p, p / "sources", p / "paper" / "sources"):
        if (cand / PAPER_BENIGN_FILE).is_file():
            return cand
    raise UserError(f"no paper sources under {p} (looked for {PAPER_BENIGN_FILE} in {p}, "
                    f"{p / 'sources'} and {p / 'paper' / 'sources'})")


def load_paper_source_file(path: str | Path, *, split: str | None = None) -> list[Prompt]:
    """One of the paper's ``sources/<split>.json`` files.

    Records ``{prompt, prompt_harm_label, source: {dataset, idx, ...}}``. Ids are
    ``paper/<file stem>/<dataset>-<idx>``. ``Prompt.split`` is ``split`` if given, else the
    file stem for harmful prompts and ``benign_general`` for ``_BC_source.json``.

    Args:
        path: the file.
        split: the ``Prompt.split`` of every prompt (``None``: as above).

    Example:
        >>> prompts = load_paper_source_file("paper/sources/CocoNot_Safety.json")  # doctest: +SKIP
    """
    path = Path(path).expanduser()
    rows = read_records(path)
    return paper_prompts(rows, path, split=split)


def paper_prompts(rows: list[dict[str, Any]], path: Path, *, split: str | None) -> list[Prompt]:
    """Prompts of paper-schema ``rows`` read from ``path`` (see :func:`load_paper_source_file`)."""
    stem = path.stem
    seen: set[str] = set()

    def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow:
        src = row.get("source")
        if not isinstance(src, dict) or "dataset" not in src or "idx" not in src:
            raise UserError(f"{origin} record {i} is not a paper sources record (needs "
                            "source.dataset and source.idx)")
        label = str(row.get("prompt_harm_label", "")).strip().lower()
        if label not in ("harmful", "unharmful"):
            raise UserError(f"{origin} record {i}: prompt_harm_label "
                            f"{row.get('prompt_harm_label')!r} is not harmful/unharmful")
        harmful = label == "harmful"
        pid = f"paper/{stem}/{src['dataset']}-{src['idx']}"
        if pid in seen:
            raise UserError(f"{origin}: two records share source {src['dataset']} idx "
                            f"{src['idx']}")
        seen.add(pid)
        if split is not None:
            name = split
        elif harmful:
            name = stem
        else:
            name = BENIGN_GENERAL if path.name == PAPER_BENIGN_FILE else stem
        return SourceRow(id=pid, text=row.get("prompt"), split=name, harmful=harmful,
                         source=f"paper/{src['dataset']}",
                         meta={**{k: clean(v) for k, v in src.items()},
                               "prompt_harm_label": label, "paper_file": stem})

    return build_prompts(rows, rule, origin=str(path), source="paper",
                         where=lambda i: f"{path} record {i}")


def load_paper_sources(path: str | Path | None = None) -> dict[str, list[Prompt]]:
    """All of the paper's ``sources/*.json``: file stem -> prompts (``_BC_source`` included).

    Args:
        path: the ``sources`` folder, its parent or the data root (see
            :func:`paper_sources_dir`); ``None``: the shared data.

    Example:
        >>> sources = load_paper_sources()  # doctest: +SKIP
        >>> sources["CocoNot_Safety"][0].id  # doctest: +SKIP
        'paper/CocoNot_Safety/coconot-0'
    """
    d = paper_sources_dir(path)
    files = sorted(d.glob("*.json"))
    return {f.stem: load_paper_source_file(f) for f in files}


def load_paper_controlled_test_set(path: str | Path | None = None) -> dict[str, list[Prompt]]:
    """The paper's controlled test set: ``{"HR", "HC", "BR", "BC"}`` -> 50 prompts each.

    ``path`` is the ``controlled_test_set`` folder (or a folder holding ``paper/``); default:
    the shared data. Ids are ``paper/controlled_test_set/<label>/<row>``, ``Prompt.split``
    is ``controlled_test_set``; ``meta`` has ``label``, the paper model's ``response``,
    ``is_refusal`` and the WildGuard fields when present.

    Args:
        path: the folder (``None``: the shared data).

    Example:
        >>> hr = load_paper_controlled_test_set()["HR"]  # doctest: +SKIP
    """
    marker = PAPER_CONTROLLED_FILES["HR"]
    d = _paper_subdir(path, "controlled_test_set", lambda c: (c / marker).exists(),
                      what="controlled_test_set", looked_for=marker)
    out: dict[str, list[Prompt]] = {}
    for label, name in PAPER_CONTROLLED_FILES.items():
        file = d / name

        def rule(i: int, row: dict[str, Any], origin: str) -> SourceRow:
            meta = {k: clean(v) for k, v in row.items() if k != "prompt"}
            meta.update({"label": label, "row": i})
            return SourceRow(id=f"paper/controlled_test_set/{label}/{i}", text=row.get("prompt"),
                             split="controlled_test_set", harmful=label.startswith("H"),
                             meta=meta)

        out[label] = build_prompts(read_records(file), rule, origin=str(file),
                                   source="paper/controlled_test_set",
                                   where=lambda i: f"{file} record {i}")
    return out


def _paper_subdir(path: str | Path | None, name: str, found: Callable[[Path], bool], *,
                  what: str, looked_for: str) -> Path:
    """The paper's ``name`` folder: ``path`` itself, ``path/name`` or ``path/paper/name``."""
    if path is None:
        shared = shared_data_dir()
        if shared is None:
            raise UserError(f"no shared data folder: pass the paper's {name} folder")
        path = shared
    p = Path(path).expanduser()
    for cand in (p, p / name, p / "paper" / name):
        if found(cand):
            return cand
    raise UserError(f"no paper {what} under {p} (looked for {looked_for})")


@dataclass(frozen=True)
class PaperTrainingPool:
    """One released steering training pool: ``H.json`` + its benign pool, as paper-suite prompts."""

    model: str
    split: str
    harmful: list[Prompt]
    benign: list[Prompt]
    manifest: dict[str, Any] = field(default_factory=dict)
    benign_from: str = ""
    """Where ``benign`` came from: ``B.json`` of this split or of another split of the model."""


def paper_training_pool_models(path: str | Path | None = None) -> list[str]:
    """Model names with released training pools (``gemma``, ``llama``, ``qwen``, ``qwen7``)."""
    d = _training_pools_dir(path)
    return sorted(p.name[: -len("_per_split")] for p in d.glob("*_per_split") if p.is_dir())


def _training_pools_dir(path: str | Path | None) -> Path:
    return _paper_subdir(
        path, "training_pools",
        lambda c: c.is_dir() and any(d.is_dir() for d in c.glob("*_per_split")),
        what="training pools", looked_for="<model>_per_split folders")


def load_paper_training_pool(path: str | Path | None, model: str, split: str, *,
                             sources: str | Path | dict[str, list[Prompt]] | None = None,
                             ) -> PaperTrainingPool:
    """The paper's per-split training pool for ``model`` (``training_pools/<model>_per_split``).

    Returns the prompts as the ``paper`` suite builds them (same ids, texts and splits),
    matched through ``source.dataset``/``idx`` where records carry them, else by text.
    ``B.json`` exists only for some splits; per the upstream recipe every split's benign
    pool is the first ``n_b`` prompts of the model's shared 32-prompt pool, so a split
    without ``B.json`` gets that slice of a sibling split's ``B.json``.
    ``sources`` (a folder, or :func:`load_paper_sources`' result to save reloading it)
    defaults to the ``sources`` folder beside ``training_pools``.

    Args:
        path: the ``training_pools`` folder or one above it (``None``: the shared data).
        model: ``gemma``, ``llama``, ``qwen``, ``qwen7`` (or ``<model>_per_split``).
        split: one of the paper's splits.
        sources: where the paper's ``sources/*.json`` are, or those already loaded.

    Example:
        >>> pool = load_paper_training_pool(None, "qwen", "XSTest_all")  # doctest: +SKIP
    """
    root = _training_pools_dir(path)
    model_dir = root / (model if model.endswith("_per_split") else f"{model}_per_split")
    if not model_dir.is_dir():
        models = sorted(p.name[: -len("_per_split")] for p in root.glob("*_per_split"))
        raise UserError(f"no training pools for model {model!r} under {root}; have {models}")
    split_dir = model_dir / split
    if not (split_dir / "H.json").is_file():
        have = sorted(p.name for p in model_dir.iterdir() if (p / "H.json").is_file())
        raise UserError(f"no training pool for split {split!r} of {model!r}; have {have}")
    if isinstance(sources, dict):
        src = sources
    else:
        src = load_paper_sources(sources if sources is not None else root.parent)
    if split not in src:
        raise UserError(f"split {split!r} is not among the paper sources {sorted(src)}")
    manifest: dict[str, Any] = {}
    if (split_dir / "manifest.json").is_file():
        manifest = json.loads((split_dir / "manifest.json").read_text(encoding="utf-8"))
    harmful = _match_pool(read_records(split_dir / "H.json"), src[split], split_dir / "H.json")
    n_b = manifest.get("n_b")
    benign_from = ""
    b_file = split_dir / "B.json"
    if not b_file.is_file():
        siblings = sorted((p for p in model_dir.glob("*/B.json")),
                          key=lambda p: -len(read_records(p)))
        b_file = siblings[0] if siblings else None  # type: ignore[assignment]
    benign: list[Prompt] = []
    if b_file is not None:
        benign = _match_pool(read_records(b_file), src["_BC_source"], b_file)
        if isinstance(n_b, int):
            if n_b > len(benign):
                raise UserError(f"{b_file} has {len(benign)} prompts, fewer than n_b={n_b}")
            benign = benign[:n_b]
        benign_from = str(b_file.relative_to(model_dir))
    return PaperTrainingPool(model=model_dir.name[: -len("_per_split")], split=split,
                             harmful=harmful, benign=benign, manifest=manifest,
                             benign_from=benign_from)


def _match_pool(rows: list[dict[str, Any]], prompts: list[Prompt], file: Path) -> list[Prompt]:
    by_key = {(str(p.meta.get("dataset")), str(p.meta.get("idx"))): p for p in prompts}
    by_text = {p.text: p for p in prompts}
    out = []
    for i, row in enumerate(rows):
        src = row.get("source")
        p = None
        if isinstance(src, dict) and "dataset" in src and "idx" in src:
            p = by_key.get((str(src["dataset"]), str(src["idx"])))
        if p is None:
            p = by_text.get(row.get("prompt"))
        if p is None or p.text != row.get("prompt"):
            raise UserError(f"{file} record {i} does not match any prompt of the paper sources")
        out.append(p)
    return out
