"""The paper's split and benign-pool names, and how its splits pair with the pools.

Every loader and suite speaks these names, so they live apart from any one dataset.
"""

from __future__ import annotations

from collections.abc import Iterable

WILDGUARD_SPLIT = "WildGuard_all"
XSTEST_SPLIT = "XSTest_all"
COCONOT_SPLITS = (
    "CocoNot_Humanizing",
    "CocoNot_Incomplete",
    "CocoNot_Indeterminate",
    "CocoNot_Safety",
    "CocoNot_Unsupported",
)
SORRYBENCH_GROUPS: dict[str, tuple[int, int]] = {
    "SorryBench_HateSpeech": (1, 5),
    "SorryBench_CrimesTorts": (6, 24),
    "SorryBench_Inappropriate": (25, 39),
    "SorryBench_Advice": (40, 44),
}
PAPER_SPLITS: tuple[str, ...] = (
    WILDGUARD_SPLIT,
    XSTEST_SPLIT,
    *COCONOT_SPLITS,
    *SORRYBENCH_GROUPS,
)
"""The paper's 11 non-compliant splits, in METHOD.md order."""

BENIGN_GENERAL = "benign_general"
"""Benign pool for every split but XSTest's (WildGuardTest benign prompts in the paper)."""
BENIGN_XSTEST = "benign_xstest"
"""Benign pool for XSTest_all (XSTest safe prompts)."""
BENIGN_COCONOT_CONTRAST = "benign_coconot_contrast"
"""CoCoNot contrast set: benign look-alikes of CoCoNot's non-compliance requests."""


def paper_pairing(splits: Iterable[str]) -> dict[str, str]:
    """The paper's pairing: XSTest_all -> XSTest safe prompts, every other split -> general pool.

    Args:
        splits: split names.

    Example:
        >>> paper_pairing(["XSTest_all", "CocoNot_Safety"])
        {'XSTest_all': 'benign_xstest', 'CocoNot_Safety': 'benign_general'}
    """
    return {s: BENIGN_XSTEST if s == XSTEST_SPLIT else BENIGN_GENERAL for s in splits}
