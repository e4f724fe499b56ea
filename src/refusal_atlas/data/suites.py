"""Suites: what a run studies (named splits, benign pools and their pairing).

``load_suite(spec)`` takes a registered suite name (``SUITES``: ``demo``, ``paper``,
``paper-raw``, ``coconot-contrast``) or the path of a user prompt file or folder; see
``docs/data.md`` for the layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UserError
from ..paths import builtin_data_dir, shared_data_dir
from .paper import load_paper_sources, paper_sources_dir
from .prompts import Prompt, PromptSuite, assemble_suite, with_split
from .records import find_local
from .sources import (
    COCONOT_FILES,
    SORRYBENCH_FILES,
    WILDGUARD_FILES,
    XSTEST_FILES,
    load_coconot,
    load_coconot_contrast,
    load_sorrybench,
    load_wildguardtest,
    load_xstest,
)
from .splits import BENIGN_GENERAL, BENIGN_XSTEST, PAPER_SPLITS, paper_pairing
from .user_files import load_prompt_file, load_user_suite

DEFAULT_SUITE = "demo"
DEMO_BENIGN_FILE = "benign.jsonl"
DEMO_STYLES = {"xstest_safe": BENIGN_XSTEST, "general": BENIGN_GENERAL}


@dataclass(frozen=True)
class SuiteInfo:
    """A registered suite: its name, a one-line description and how to build it."""

    name: str
    description: str
    builder: Callable[[Path | None], PromptSuite]
    """``builder(data_dir)``; ``data_dir`` is ``None`` unless the caller gave one."""


# --------------------------------------------------------------------------- demo


def build_demo_suite(directory: str | Path | None = None) -> PromptSuite:
    """The built-in demo suite (``builtin_data_dir()`` unless ``directory`` is given).

    ``<Split>.jsonl`` files (``{"id","category","prompt"}``) are the splits;
    ``benign.jsonl`` (``{"id","category","style","prompt"}``) holds both benign pools:
    ``style == "xstest_safe"`` -> ``benign_xstest`` (paired with XSTest_all),
    ``"general"`` -> ``benign_general`` (every other split).
    """
    d = Path(directory) if directory is not None else builtin_data_dir()
    files = sorted(f for f in d.glob("*.jsonl") if f.name != DEMO_BENIGN_FILE) if d.is_dir() else []
    if not files or not (d / DEMO_BENIGN_FILE).is_file():
        raise UserError(f"the built-in demo data is missing from {d} (expected <Split>.jsonl files "
                        f"and {DEMO_BENIGN_FILE}); reinstall refusal-atlas")
    harmful: list[Prompt] = []
    for f in files:
        harmful += load_prompt_file(f, split=f.stem, harmful=True, id_prefix=f"demo/{f.stem}")
    benign: list[Prompt] = []
    for p in load_prompt_file(d / DEMO_BENIGN_FILE, split=BENIGN_GENERAL, harmful=False,
                                id_prefix="demo/benign"):
        style = str(p.meta.get("style") or "general")
        if style not in DEMO_STYLES:
            raise UserError(f"{d / DEMO_BENIGN_FILE} row {p.meta['row'] + 1}: unknown style "
                            f"{style!r} (expected {sorted(DEMO_STYLES)})")
        benign.append(with_split([p], DEMO_STYLES[style])[0])
    harmful = [_retag(p, "demo") for p in harmful]
    benign = [_retag(p, "demo") for p in benign]
    return assemble_suite("demo", harmful, benign, lambda s: paper_pairing([s])[s])


def _retag(p: Prompt, source: str) -> Prompt:
    return replace(p, source=source)


# --------------------------------------------------------------------------- paper


def _data_root(data_dir: str | Path | None, suite: str) -> Path:
    if data_dir is not None:
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise UserError(f"data folder not found: {p}")
        return p
    shared = shared_data_dir()
    if shared is None:
        raise UserError(f"the {suite!r} suite needs the prompt data folder: pass data_dir (or "
                        "--data-dir) or set REFUSAL_ATLAS_SHARED_DATA")
    return shared


def build_paper_suite(data_dir: str | Path | None = None) -> PromptSuite:
    """The paper's 11 splits from its released subsets (``<data_dir>/paper/sources/*.json``).

    XSTest_all is paired with the 250 XSTest safe prompts (``<data_dir>/xstest/
    xstest_prompts.csv``, else the hub); every other split with ``_BC_source.json`` (490).
    """
    root = _data_root(data_dir, "paper")
    sources = load_paper_sources(root)
    missing = [s for s in PAPER_SPLITS if s not in sources]
    if missing:
        raise UserError(f"the paper sources in {paper_sources_dir(root)} lack {missing}")
    harmful = [p for s in PAPER_SPLITS for p in sources[s]]
    # data_dir may be the data root or the paper/ folder itself
    data_root = paper_sources_dir(root).parent.parent
    xs_local = find_local(root / "xstest", XSTEST_FILES) or find_local(
        data_root / "xstest", XSTEST_FILES)
    try:
        xs_safe = load_xstest(xs_local, label="safe")
    except UserError as exc:
        raise UserError(f"{exc}. The paper suite reads XSTest's safe prompts from "
                        f"{root / 'xstest' / XSTEST_FILES[0]}") from None
    benign = with_split(sources["_BC_source"], BENIGN_GENERAL) + xs_safe
    return assemble_suite("paper", harmful, benign, lambda s: paper_pairing([s])[s])


RAW_LAYOUT = {
    "wildguardmix": WILDGUARD_FILES,
    "xstest": XSTEST_FILES,
    "coconot": COCONOT_FILES["original"],
    "sorrybench": SORRYBENCH_FILES,
}
"""paper-raw local layout: ``<data_dir>/<folder>/<one of the file names>``."""


def _raw_path(data_dir: Path | None, folder: str) -> Path | None:
    if data_dir is None:
        return None
    return find_local(data_dir / folder, RAW_LAYOUT[folder])


def build_paper_raw_suite(data_dir: str | Path | None = None) -> PromptSuite:
    """The paper's 11 splits rebuilt from the raw datasets.

    Each dataset comes from ``<data_dir>/<folder>/`` when that copy exists (see
    ``RAW_LAYOUT``), else from the Hugging Face hub. WildGuardTest non-adversarial
    harmful -> WildGuard_all, its benign prompts -> ``benign_general``; XSTest unsafe ->
    XSTest_all, safe -> ``benign_xstest``; CoCoNot original test by category; SORRY-Bench
    base prompts by category group.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else None
    if root is not None and not root.is_dir():
        raise UserError(f"data folder not found: {root}")
    prompts: list[Prompt] = []
    for folder, loader in (("wildguardmix", load_wildguardtest), ("xstest", load_xstest),
                           ("coconot", load_coconot), ("sorrybench", load_sorrybench)):
        local = _raw_path(root, folder)
        if local is not None:
            prompts += loader(local)
            continue
        try:
            prompts += loader(None)
        except UserError as exc:
            where = root if root is not None else Path("<data_dir>")
            raise UserError(f"{exc}. For the paper-raw suite, put the copy at "
                            f"{where / folder / RAW_LAYOUT[folder][0]} and pass data_dir") from None
    return assemble_suite("paper-raw", [p for p in prompts if p.harmful],
                          [p for p in prompts if not p.harmful], lambda s: paper_pairing([s])[s])


def build_coconot_contrast_suite(data_dir: str | Path | None = None) -> PromptSuite:
    """CoCoNot Safety/Incomplete/Unsupported, each paired with its own contrast-set pool.

    Reads ``<data_dir>/coconot/`` (default: the shared data, else the hub).
    """
    folder: Path | None = None
    root = Path(data_dir).expanduser() if data_dir is not None else shared_data_dir()
    if root is not None and (root / "coconot").is_dir():
        folder = root / "coconot"
    original = load_coconot(folder)
    contrast = load_coconot_contrast(folder)
    pools = {p.meta["coconot_split"] for p in contrast}
    harmful = [p for p in original if p.split in pools]
    benign = [with_split([p], f"benign_contrast_{p.meta['coconot_split'].split('_', 1)[1].lower()}")[0]
              for p in contrast]
    return assemble_suite("coconot-contrast", harmful, benign,
                          lambda s: f"benign_contrast_{s.split('_', 1)[1].lower()}")


SUITES: dict[str, SuiteInfo] = {
    info.name: info
    for info in (
        SuiteInfo("demo", "built-in demo prompts (our own wording) in the paper's 11 splits; "
                  "no download", lambda d: build_demo_suite()),
        SuiteInfo("paper", "the paper's 11 splits from its released subsets "
                  "(shared data paper/sources), benign: _BC_source / XSTest safe",
                  build_paper_suite),
        SuiteInfo("paper-raw", "the paper's 11 splits rebuilt from WildGuardMix, XSTest, "
                  "CoCoNot and SORRY-Bench (hub, or local copies under data_dir)",
                  build_paper_raw_suite),
        SuiteInfo("coconot-contrast", "CoCoNot Safety/Incomplete/Unsupported, each against "
                  "its own CoCoNot contrast-set benign pool", build_coconot_contrast_suite),
    )
}


def list_suites() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered suite.

    Example:
        >>> [name for name, _ in list_suites()][:2]
        ['demo', 'paper']
    """
    return [(i.name, i.description) for i in SUITES.values()]


# --------------------------------------------------------------------------- entry point


def load_suite(spec: str = DEFAULT_SUITE, *, data_dir: str | Path | None = None,
               splits: list[str] | None = None) -> PromptSuite:
    """The suite named by ``spec`` (a key of :data:`SUITES` or a path), optionally narrowed.

    ``data_dir`` is where ``paper``/``paper-raw``/``coconot-contrast`` read their data
    (default: the shared data folder, or the hub for ``paper-raw``); ``demo`` and user
    paths ignore it. ``splits`` keeps only those splits (and the pools they use).

    Args:
        spec: a suite name (``demo``, ``paper``, ``paper-raw``, ``coconot-contrast``) or
            the path of a prompt file or folder.
        data_dir: where the data-backed suites read their data.
        splits: keep only these splits (``None``: all).

    Example:
        >>> suite = load_suite("demo", splits=["XSTest_all", "CocoNot_Safety"])
        >>> list(suite.splits)
        ['XSTest_all', 'CocoNot_Safety']
    """
    spec = str(spec).strip() if spec is not None else DEFAULT_SUITE
    if not spec:
        spec = DEFAULT_SUITE
    if spec in SUITES:
        suite = SUITES[spec].builder(Path(data_dir) if data_dir is not None else None)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise UserError(f"unknown suite {spec!r}: use one of {', '.join(SUITES)}, or the path "
                            "of a prompt file (.json/.jsonl/.csv) or folder")
        suite = load_user_suite(path)
    if splits is not None:
        wanted = list(dict.fromkeys(splits))
        if not wanted:
            raise UserError(f"no splits selected; suite {suite.name!r} has "
                            f"{', '.join(suite.splits)}")
        unknown = [s for s in wanted if s not in suite.splits]
        if unknown:
            raise UserError(f"unknown split(s) {', '.join(unknown)} for suite {suite.name!r}; "
                            f"it has {', '.join(suite.splits)}")
        suite = suite.subset([s for s in suite.splits if s in wanted])
    return suite


def limit_suite(suite: PromptSuite, limit: int) -> PromptSuite:
    """The first ``limit`` prompts of every split and benign pool.

    Example:
        >>> small = limit_suite(load_suite("demo"), 8)
    """
    return PromptSuite(name=suite.name,
                       splits={k: v[:limit] for k, v in suite.splits.items()},
                       benign={k: v[:limit] for k, v in suite.benign.items()},
                       benign_for=dict(suite.benign_for))
