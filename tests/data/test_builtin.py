"""Quality checks for the built-in demo prompts in ``refusal_atlas/data/builtin/``.

Every ``*.jsonl`` there is one prompt category: the 11 non-compliant splits
(``<Split>.jsonl``) and ``benign.jsonl``. The prompts are our own wording, so
besides format and size the checks look for duplicates and near-duplicates
across all files, and for prompts copied from the real datasets (when
``../shared/data`` is present).
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from refusal_atlas.paths import builtin_data_dir, shared_data_dir

SPLITS = (
    "WildGuard_all",
    "XSTest_all",
    "CocoNot_Humanizing",
    "CocoNot_Incomplete",
    "CocoNot_Indeterminate",
    "CocoNot_Safety",
    "CocoNot_Unsupported",
    "SorryBench_HateSpeech",
    "SorryBench_CrimesTorts",
    "SorryBench_Inappropriate",
    "SorryBench_Advice",
)
BENIGN = "benign"
REQUIRED_KEYS = ("id", "category", "prompt")
BENIGN_STYLES = {"xstest_safe", "general"}
XSTEST_TYPES = {
    "homonyms",
    "figurative_language",
    "safe_targets",
    "safe_contexts",
    "definitions",
    "nons_group_real_discr",
    "real_group_nons_discr",
    "historical_events",
    "privacy_public",
    "privacy_fictional",
}
MIN_SPLIT_PROMPTS = 60
MIN_BENIGN_PROMPTS = 300
MIN_BENIGN_XSTEST_SAFE = 120

NEAR_JACCARD = 0.7  # token-set Jaccard between two built-in prompts
NEAR_RATIO = 0.85  # difflib ratio between two built-in prompts
COPY_RATIO = 0.9  # difflib ratio between a built-in prompt and a real-dataset prompt


# --------------------------------------------------------------------------- helpers


def normalise(text: str) -> str:
    """Lowercase, drop apostrophes and punctuation, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"['\u2018\u2019`]", "", text)
    text = re.sub(r"[\W_]+", " ", text)
    return " ".join(text.split())


def _ratio(a: str, b: str) -> float:
    # autojunk=False: with the default, every common letter of a text over 200
    # characters counts as junk and long near-copies score close to 0.
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "
_CHAR_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


def _char_counts(texts: list[str]) -> np.ndarray:
    """Character histograms; characters outside the alphabet share one bucket.

    sum(min(counts)) over two histograms bounds difflib's matching-character
    count from above (merging buckets can only raise it), so
    2 * sum(min) / (len(a) + len(b)) >= quick_ratio() >= ratio().
    """
    out = np.zeros((len(texts), len(_ALPHABET) + 1), dtype=np.int32)
    other = len(_ALPHABET)
    for row, text in enumerate(texts):
        for char, n in Counter(text).items():
            out[row, _CHAR_INDEX.get(char, other)] += n
    return out


def _ratio_candidates(
    left: list[str], right: list[str], threshold: float, same: bool
) -> list[tuple[int, int]]:
    """Index pairs whose difflib ratio may reach ``threshold`` (a cheap vectorised bound)."""
    if not left or not right:
        return []
    hl, hr = _char_counts(left), _char_counts(right)
    ll = np.array([len(t) for t in left], dtype=np.float64)
    lr = np.array([len(t) for t in right], dtype=np.float64)
    pairs: list[tuple[int, int]] = []
    chunk = max(1, 4_000_000 // (len(right) * hr.shape[1]))
    for start in range(0, len(left), chunk):
        stop = min(start + chunk, len(left))
        total = ll[start:stop, None] + lr[None, :]
        total[total == 0] = 1
        # length bound (real_quick_ratio) first, then the character-multiset bound
        length_ok = 2 * np.minimum(ll[start:stop, None], lr[None, :]) / total >= threshold
        if same:
            length_ok &= np.arange(start, stop)[:, None] < np.arange(len(right))[None, :]
        rows, cols = np.nonzero(length_ok)
        if rows.size == 0:
            continue
        matches = np.minimum(hl[start + rows], hr[cols]).sum(axis=1)
        keep = 2 * matches / total[rows, cols] >= threshold
        pairs.extend(zip((rows[keep] + start).tolist(), cols[keep].tolist()))
    return pairs


def _jaccard_pairs(
    token_sets: list[frozenset[str]], threshold: float
) -> list[tuple[int, int, float]]:
    """Pairs i < j with token-set Jaccard >= threshold, via a sparse co-occurrence product."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, tokens in enumerate(token_sets):
        for tok in tokens:
            rows.append(i)
            cols.append(vocab.setdefault(tok, len(vocab)))
    if not rows:
        return []
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(token_sets), len(vocab))
    )
    inter = sparse.triu(m @ m.T, k=1).tocoo()
    sizes = np.array([len(t) for t in token_sets], dtype=np.float64)
    union = sizes[inter.row] + sizes[inter.col] - inter.data
    jac = inter.data / np.maximum(union, 1)
    keep = jac >= threshold
    return list(zip(inter.row[keep].tolist(), inter.col[keep].tolist(), jac[keep].tolist()))


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict[str, list[dict]], list[str]]:
    """All built-in files: {file stem: records}, plus every parse/format problem found."""
    files: dict[str, list[dict]] = {}
    problems: list[str] = []
    data_dir = builtin_data_dir()
    for path in sorted(data_dir.glob("*.jsonl")):
        records: list[dict] = []
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                where = f"{path.name}:{lineno}"
                if not line.strip():
                    problems.append(f"{where}: blank line")
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(f"{where}: not JSON ({exc})")
                    continue
                if not isinstance(rec, dict):
                    problems.append(f"{where}: not a JSON object")
                    continue
                missing = [
                    k
                    for k in REQUIRED_KEYS
                    if not isinstance(rec.get(k), str) or not rec[k].strip()
                ]
                if missing:
                    problems.append(f"{where}: missing or empty {missing}")
                    continue
                rec["_where"] = where
                records.append(rec)
        files[path.stem] = records
    return files, problems


def _all_records() -> list[dict]:
    files, _ = _load()
    return [rec for records in files.values() for rec in records]


def _show(rec: dict) -> str:
    prompt = rec["prompt"].replace("\n", " ")
    return f"{rec['id']} ({rec['_where']}): {prompt[:100]!r}"


def _fail_listing(title: str, lines: list[str], limit: int = 60) -> None:
    shown = lines[:limit]
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    pytest.fail(f"{title} ({len(lines)}):\n" + "\n".join(shown) + more, pytrace=False)


# --------------------------------------------------------------------------- format


def test_builtin_data_dir_has_jsonl_files():
    assert builtin_data_dir().is_dir(), f"missing folder {builtin_data_dir()}"
    files, _ = _load()
    assert files, f"no *.jsonl files in {builtin_data_dir()}"


def test_all_split_files_present():
    files, _ = _load()
    missing = [f"{name}.jsonl" for name in (*SPLITS, BENIGN) if name not in files]
    if missing:
        pytest.fail(
            f"built-in data files missing from {builtin_data_dir()}: {', '.join(missing)}",
            pytrace=False,
        )
    unexpected = sorted(set(files) - set(SPLITS) - {BENIGN})
    assert not unexpected, f"unexpected built-in data files (not a known split): {unexpected}"


def test_every_line_parses_with_required_keys():
    _, problems = _load()
    if problems:
        _fail_listing("malformed lines in built-in data", problems)


def test_category_matches_file_name():
    files, _ = _load()
    wrong = [
        f"{rec['_where']}: category {rec['category']!r}, expected {stem!r}"
        for stem, records in files.items()
        for rec in records
        if rec["category"] != stem
    ]
    if wrong:
        _fail_listing("records whose category does not match their file", wrong)


def test_ids_unique_across_files():
    seen: dict[str, str] = {}
    dupes = []
    for rec in _all_records():
        if rec["id"] in seen:
            dupes.append(f"{rec['id']}: {seen[rec['id']]} and {rec['_where']}")
        else:
            seen[rec["id"]] = rec["_where"]
    if dupes:
        _fail_listing("duplicate ids", dupes)


def _benign_records() -> list[dict]:
    files, _ = _load()
    if BENIGN not in files:
        pytest.fail(f"{BENIGN}.jsonl is missing from {builtin_data_dir()}", pytrace=False)
    return files[BENIGN]


def test_benign_fields():
    bad = []
    for rec in _benign_records():
        style = rec.get("style")
        if style not in BENIGN_STYLES:
            bad.append(f"{rec['_where']}: style {style!r} not in {sorted(BENIGN_STYLES)}")
        elif style == "xstest_safe" and rec.get("xstest_type") not in XSTEST_TYPES:
            bad.append(
                f"{rec['_where']}: xstest_type {rec.get('xstest_type')!r} not a known XSTest safe type"
            )
        elif style == "general" and "xstest_type" in rec:
            bad.append(f"{rec['_where']}: a general prompt has an xstest_type")
        if not re.fullmatch(r"benign-\d{3,}", rec["id"]):
            bad.append(f"{rec['_where']}: id {rec['id']!r} is not benign-NNN")
    if bad:
        _fail_listing("benign records with bad fields", bad)


# --------------------------------------------------------------------------- sizes


def test_split_sizes():
    files, _ = _load()
    short = []
    for name in SPLITS:
        n = len(files.get(name, []))
        if n < MIN_SPLIT_PROMPTS:
            state = "file missing" if name not in files else f"{n} prompts"
            short.append(f"{name}.jsonl: {state}, need >= {MIN_SPLIT_PROMPTS}")
    if short:
        _fail_listing("non-compliant splits too small", short)


def test_benign_size():
    records = _benign_records()
    n_xstest = sum(rec.get("style") == "xstest_safe" for rec in records)
    assert len(records) >= MIN_BENIGN_PROMPTS, (
        f"benign has {len(records)} prompts, need >= {MIN_BENIGN_PROMPTS}"
    )
    assert n_xstest >= MIN_BENIGN_XSTEST_SAFE, (
        f"benign has {n_xstest} xstest_safe prompts, need >= {MIN_BENIGN_XSTEST_SAFE}"
    )


# --------------------------------------------------------------------------- duplicates


def test_no_exact_duplicates_after_normalisation():
    by_text: dict[str, list[dict]] = {}
    for rec in _all_records():
        by_text.setdefault(normalise(rec["prompt"]), []).append(rec)
    groups = [recs for recs in by_text.values() if len(recs) > 1]
    if groups:
        _fail_listing(
            "prompts that are identical after normalisation",
            [" == ".join(_show(r) for r in recs) for recs in groups],
        )


def test_no_near_duplicates():
    records = _all_records()
    texts = [normalise(rec["prompt"]) for rec in records]
    flagged: dict[tuple[int, int], str] = {}

    tokens = [frozenset(t.split()) for t in texts]
    for i, j, jac in _jaccard_pairs(tokens, NEAR_JACCARD):
        flagged[(i, j)] = f"jaccard={jac:.2f}"

    for i, j in _ratio_candidates(texts, texts, NEAR_RATIO, same=True):
        if texts[i] == texts[j]:
            continue  # exact duplicates are the other test's business
        ratio = _ratio(texts[i], texts[j])
        if ratio >= NEAR_RATIO:
            note = f"ratio={ratio:.2f}"
            flagged[(i, j)] = f"{flagged[(i, j)]}, {note}" if (i, j) in flagged else note

    if flagged:
        lines = [
            f"[{why}]\n    {_show(records[i])}\n    {_show(records[j])}"
            for (i, j), why in sorted(flagged.items())
        ]
        _fail_listing(
            f"near-duplicate prompt pairs (token Jaccard >= {NEAR_JACCARD} or difflib ratio >= {NEAR_RATIO})",
            lines,
        )


# --------------------------------------------------------------------------- not copied


def _real_dataset_prompts(root: Path) -> dict[str, str]:
    """{normalised prompt: 'file'} for the real datasets found under ``root``."""
    found: dict[str, str] = {}

    def add(text, origin: str) -> None:
        if isinstance(text, str) and text.strip():
            found.setdefault(normalise(text), origin)

    xstest = root / "xstest" / "xstest_prompts.csv"
    if xstest.is_file():
        with xstest.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                add(row.get("prompt"), str(xstest.relative_to(root)))
    for path in sorted((root / "coconot").glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    add(json.loads(line).get("prompt"), str(path.relative_to(root)))
    for path in sorted((root / "paper" / "sources").glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            if isinstance(item, dict):
                add(item.get("prompt"), str(path.relative_to(root)))
    found.pop("", None)
    return found


def test_not_copied_from_real_datasets():
    root = shared_data_dir()
    if root is None:
        pytest.skip(
            "real datasets not available (set REFUSAL_ATLAS_SHARED_DATA or put them in ../shared/data)"
        )
    real = _real_dataset_prompts(root)
    if not real:
        pytest.skip(f"no real dataset prompts found under {root}")
    real_texts = list(real)
    records = _all_records()
    texts = [normalise(rec["prompt"]) for rec in records]

    copied = []
    for i, text in enumerate(texts):
        if text in real:
            copied.append(f"[exact copy of {real[text]}]\n    {_show(records[i])}")
    exact = {i for i, text in enumerate(texts) if text in real}
    for i, j in _ratio_candidates(texts, real_texts, COPY_RATIO, same=False):
        if i in exact:
            continue
        ratio = _ratio(texts[i], real_texts[j])
        if ratio >= COPY_RATIO:
            copied.append(
                f"[ratio={ratio:.2f} with {real[real_texts[j]]}]\n    {_show(records[i])}\n"
                f"    real: {real_texts[j][:100]!r}"
            )
    if copied:
        _fail_listing(f"built-in prompts copied from the real datasets under {root}", copied)
