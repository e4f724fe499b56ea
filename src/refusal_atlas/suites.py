"""Suites: what a run studies (named splits, benign pools and their pairing).

``load_suite(spec)`` takes a registered suite name (``SUITES``: ``demo``, ``paper``,
``paper-raw``, ``coconot-contrast``) or the path of a user prompt file or folder; see
``docs/data.md`` for the layouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from . import sources as S
from .errors import UserError
from .paths import builtin_data_dir, shared_data_dir
from .prompts import Prompt, PromptSuite

DEFAULT_SUITE = "demo"
DEMO_BENIGN_FILE = "benign.jsonl"
DEMO_STYLES = {"xstest_safe": S.BENIGN_XSTEST, "general": S.BENIGN_GENERAL}
USER_BENIGN_POOL = "benign"


@dataclass(frozen=True)
class SuiteInfo:
    name: str
    description: str
    builder: Callable[[Path | None], PromptSuite]
    """``builder(data_dir)``; ``data_dir`` is ``None`` unless the caller gave one."""


def paper_pairing(splits: Iterable[str]) -> dict[str, str]:
    """The paper's pairing: XSTest_all -> XSTest safe prompts, every other split -> general pool."""
    return {s: S.BENIGN_XSTEST if s == S.XSTEST_SPLIT else S.BENIGN_GENERAL for s in splits}


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [s for s in S.PAPER_SPLITS if s in names]
    return known + sorted(n for n in names if n not in S.PAPER_SPLITS)


def _group(prompts: Iterable[Prompt]) -> dict[str, list[Prompt]]:
    out: dict[str, list[Prompt]] = {}
    for p in prompts:
        out.setdefault(p.split, []).append(p)
    return out


def assemble_suite(name: str, harmful: Iterable[Prompt], benign: Iterable[Prompt],
                   benign_for: dict[str, str] | Callable[[str], str]) -> PromptSuite:
    """Build a :class:`PromptSuite` from prompts grouped by ``Prompt.split``.

    ``benign_for`` maps each split to a benign pool (a dict or a function). Splits are
    ordered as in the paper, then alphabetically; an empty split or pool, or a pairing
    with a missing pool, is a :class:`UserError`.
    """
    groups = _group(harmful)
    pools = _group(benign)
    order = _ordered(groups)
    pairing = {s: (benign_for(s) if callable(benign_for) else benign_for.get(s)) for s in order}
    if not order:
        raise UserError(f"suite {name!r} has no non-compliant prompts")
    for split, pool in pairing.items():
        if pool is None:
            raise UserError(f"suite {name!r}: split {split!r} has no benign pool")
        if not pools.get(pool):
            raise UserError(f"suite {name!r}: split {split!r} needs benign pool {pool!r}, "
                            f"which has no prompts (pools: {sorted(pools) or 'none'})")
    try:
        return PromptSuite(name=name, splits={s: groups[s] for s in order},
                           benign={b: pools[b] for b in sorted(pools)},
                           benign_for=pairing)
    except ValueError as exc:
        raise UserError(f"suite {name!r}: {exc}") from None


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
        harmful += S.load_prompt_file(f, split=f.stem, harmful=True, id_prefix=f"demo/{f.stem}")
    benign: list[Prompt] = []
    for p in S.load_prompt_file(d / DEMO_BENIGN_FILE, split=S.BENIGN_GENERAL, harmful=False,
                                id_prefix="demo/benign"):
        style = str(p.meta.get("style") or "general")
        if style not in DEMO_STYLES:
            raise UserError(f"{d / DEMO_BENIGN_FILE} row {p.meta['row'] + 1}: unknown style "
                            f"{style!r} (expected {sorted(DEMO_STYLES)})")
        benign.append(S.with_split([p], DEMO_STYLES[style])[0])
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
    sources = S.load_paper_sources(root)
    missing = [s for s in S.PAPER_SPLITS if s not in sources]
    if missing:
        raise UserError(f"the paper sources in {S.paper_sources_dir(root)} lack {missing}")
    harmful = [p for s in S.PAPER_SPLITS for p in sources[s]]
    # data_dir may be the data root or the paper/ folder itself
    data_root = S.paper_sources_dir(root).parent.parent
    xs_local = S.find_local(root / "xstest", S.XSTEST_FILES) or S.find_local(
        data_root / "xstest", S.XSTEST_FILES)
    try:
        xs_safe = S.load_xstest(xs_local, label="safe")
    except UserError as exc:
        raise UserError(f"{exc}. The paper suite reads XSTest's safe prompts from "
                        f"{root / 'xstest' / S.XSTEST_FILES[0]}") from None
    benign = S.with_split(sources["_BC_source"], S.BENIGN_GENERAL) + xs_safe
    return assemble_suite("paper", harmful, benign, lambda s: paper_pairing([s])[s])


RAW_LAYOUT = {
    "wildguardmix": S.WILDGUARD_FILES,
    "xstest": S.XSTEST_FILES,
    "coconot": S.COCONOT_FILES["original"],
    "sorrybench": S.SORRYBENCH_FILES,
}
"""paper-raw local layout: ``<data_dir>/<folder>/<one of the file names>``."""


def _raw_path(data_dir: Path | None, folder: str) -> Path | None:
    if data_dir is None:
        return None
    return S.find_local(data_dir / folder, RAW_LAYOUT[folder])


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
    for folder, loader in (("wildguardmix", S.load_wildguardtest), ("xstest", S.load_xstest),
                           ("coconot", S.load_coconot), ("sorrybench", S.load_sorrybench)):
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
    original = S.load_coconot(folder)
    contrast = S.load_coconot_contrast(folder)
    pools = {p.meta["coconot_split"] for p in contrast}
    harmful = [p for p in original if p.split in pools]
    benign = [S.with_split([p], f"benign_contrast_{p.meta['coconot_split'].split('_', 1)[1].lower()}")[0]
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
    """(name, one-line description) of every registered suite."""
    return [(i.name, i.description) for i in SUITES.values()]


# --------------------------------------------------------------------------- user paths


def load_user_suite(path: str | Path) -> PromptSuite:
    """A suite from a user file or folder (layouts in ``docs/data.md``)."""
    p = Path(path).expanduser()
    if p.is_file():
        return _file_suite(p)
    if p.is_dir():
        sources_dir = _paper_style_dir(p)
        if sources_dir is not None:
            return _paper_style_suite(p, sources_dir)
        return _folder_suite(p)
    raise UserError(f"no such file or folder: {p}")


def _file_suite(path: Path) -> PromptSuite:
    prompts = S.load_prompt_file(path)
    harmful = [p for p in prompts if p.harmful]
    benign = S.with_split([p for p in prompts if not p.harmful], USER_BENIGN_POOL)
    if not benign:
        raise UserError(f"{path} has no benign prompts: a suite needs some (rows with "
                        "harmful=false, or category 'benign')")
    if not harmful:
        raise UserError(f"{path} has only benign prompts: a suite needs non-compliant ones too")
    return assemble_suite(f"user:{path.name}", harmful, benign, lambda s: USER_BENIGN_POOL)


def _paper_style_dir(p: Path) -> Path | None:
    for cand in (p, p / "sources"):
        if (cand / S.PAPER_BENIGN_FILE).is_file():
            return cand
    return None


def _paper_style_suite(root: Path, d: Path) -> PromptSuite:
    harmful: list[Prompt] = []
    benign: list[Prompt] = []
    own_pools: set[str] = set()
    for f in sorted(d.glob("*.json")):
        if f.name == S.PAPER_BENIGN_FILE:
            benign += S.load_paper_source_file(f, split=USER_BENIGN_POOL)
        elif f.stem.startswith("_BC_"):
            split = f.stem[len("_BC_"):]
            own_pools.add(split)
            benign += S.load_paper_source_file(f, split=f"benign_{split}")
        elif not f.stem.startswith(("_", ".")):
            prompts = S.load_paper_source_file(f)
            harmful += [p for p in prompts if p.harmful]
            benign += S.with_split([p for p in prompts if not p.harmful], USER_BENIGN_POOL)
    return assemble_suite(f"user:{root.name}", harmful, benign,
                          lambda s: f"benign_{s}" if s in own_pools else USER_BENIGN_POOL)


def _folder_suite(d: Path) -> PromptSuite:
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in
                   S.PROMPT_FILE_SUFFIXES and not f.name.startswith((".", "_")))
    if not files:
        raise UserError(f"{d} holds no prompt files (.json, .jsonl or .csv)")
    harmful: list[Prompt] = []
    benign: list[Prompt] = []
    own_pools: set[str] = set()
    stems = [f.stem for f in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise UserError(f"{d}: more than one file for {dup}; keep one file per split")
    for f in files:
        if f.stem == "benign":
            benign += S.load_prompt_file(f, split=USER_BENIGN_POOL, harmful=False,
                                         id_prefix=f"user/{d.name}/benign")
        elif f.stem.startswith("benign_"):
            split = f.stem[len("benign_"):]
            own_pools.add(split)
            benign += S.load_prompt_file(f, split=f.stem, harmful=False,
                                         id_prefix=f"user/{d.name}/{f.stem}")
        else:
            harmful += S.load_prompt_file(f, split=f.stem, harmful=True,
                                          id_prefix=f"user/{d.name}/{f.stem}")
    unknown = sorted(own_pools - {p.split for p in harmful})
    if unknown:
        raise UserError(f"{d}: benign_<split> file(s) for unknown split(s) {unknown}")
    return assemble_suite(f"user:{d.name}", harmful, benign,
                          lambda s: f"benign_{s}" if s in own_pools else USER_BENIGN_POOL)


# --------------------------------------------------------------------------- entry point


def load_suite(spec: str = DEFAULT_SUITE, *, data_dir: str | Path | None = None,
               splits: list[str] | None = None) -> PromptSuite:
    """The suite named by ``spec`` (a key of :data:`SUITES` or a path), optionally narrowed.

    ``data_dir`` is where ``paper``/``paper-raw``/``coconot-contrast`` read their data
    (default: the shared data folder, or the hub for ``paper-raw``); ``demo`` and user
    paths ignore it. ``splits`` keeps only those splits (and the pools they use).
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


# --------------------------------------------------------------------------- run-folder stage

SNAPSHOT_PROMPTS = "prompts.jsonl"
SNAPSHOT_SUITE = "suite.json"


def write_suite_snapshot(suite: PromptSuite, out_dir: Path) -> dict:
    """The exact prompts a run used, so a resumed or re-read run never re-reads sources."""
    from .artifacts import atomic_path, write_json

    with atomic_path(out_dir / SNAPSHOT_PROMPTS) as tmp:
        import json

        with open(tmp, "w", encoding="utf-8") as fh:
            for p in suite.all_prompts():
                fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    summary = {**suite.summary(), "fingerprint": suite.fingerprint(),
               "split_order": list(suite.splits), "benign_order": list(suite.benign)}
    write_json(out_dir / SNAPSHOT_SUITE, summary)
    return summary


def read_suite_snapshot(out_dir: Path) -> PromptSuite:
    from .artifacts import read_json, read_jsonl

    meta = read_json(Path(out_dir) / SNAPSHOT_SUITE)
    prompts = [Prompt.from_dict(r) for r in read_jsonl(Path(out_dir) / SNAPSHOT_PROMPTS)]
    splits: dict[str, list[Prompt]] = {s: [] for s in meta["split_order"]}
    benign: dict[str, list[Prompt]] = {b: [] for b in meta["benign_order"]}
    for p in prompts:
        (splits if p.harmful else benign)[p.split].append(p)
    return PromptSuite(name=meta["name"], splits=splits, benign=benign,
                       benign_for=dict(meta["benign_for"]))


def limit_suite(suite: PromptSuite, limit: int) -> PromptSuite:
    """The first ``limit`` prompts of every split and benign pool."""
    return PromptSuite(name=suite.name,
                       splits={k: v[:limit] for k, v in suite.splits.items()},
                       benign={k: v[:limit] for k, v in suite.benign.items()},
                       benign_for=dict(suite.benign_for))


def run_prompts_stage(ctx, out_dir: Path, resuming: bool) -> dict:
    cfg = ctx.config.data
    suite = load_suite(cfg.suite, data_dir=cfg.data_dir, splits=cfg.splits)
    if cfg.limit is not None:
        suite = limit_suite(suite, cfg.limit)
    return write_suite_snapshot(suite, out_dir)
