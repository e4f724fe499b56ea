"""Prompt data: the :class:`Prompt`/:class:`PromptSuite` model, public datasets, the paper's
released files, user files, the registered suites and the run's prompt snapshot.

Example:
    >>> from refusal_atlas.data import load_suite
    >>> suite = load_suite("demo")
    >>> suite.benign_for["XSTest_all"]
    'benign_xstest'
"""

from .paper import (
    PAPER_BENIGN_FILE,
    PAPER_CONTROLLED_FILES,
    PaperTrainingPool,
    is_paper_records,
    load_paper_controlled_test_set,
    load_paper_source_file,
    load_paper_sources,
    load_paper_training_pool,
    paper_sources_dir,
    paper_training_pool_models,
)
from .prompts import Prompt, PromptSuite, assemble_suite, with_split
from .records import find_local, hub_error, read_records
from .snapshot import read_suite_snapshot, write_suite_snapshot
from .sources import (
    coconot_split_name,
    load_coconot,
    load_coconot_contrast,
    load_refusal_direction,
    load_sorrybench,
    load_wildguardtest,
    load_xstest,
    sorrybench_split_name,
    wildguardtest_pools,
)
from .splits import (
    BENIGN_COCONOT_CONTRAST,
    BENIGN_GENERAL,
    BENIGN_XSTEST,
    COCONOT_SPLITS,
    PAPER_SPLITS,
    SORRYBENCH_GROUPS,
    WILDGUARD_SPLIT,
    XSTEST_SPLIT,
    paper_pairing,
)
from .suites import DEFAULT_SUITE, SUITES, SuiteInfo, limit_suite, list_suites, load_suite
from .user_files import load_prompt_file, load_user_suite

__all__ = [
    "Prompt", "PromptSuite", "assemble_suite", "with_split",
    "DEFAULT_SUITE", "SUITES", "SuiteInfo", "limit_suite", "list_suites", "load_suite",
    "load_prompt_file", "load_user_suite",
    "read_suite_snapshot", "write_suite_snapshot",
    "load_wildguardtest", "wildguardtest_pools", "load_xstest", "load_coconot",
    "load_coconot_contrast", "coconot_split_name", "load_sorrybench", "sorrybench_split_name",
    "load_refusal_direction",
    "PAPER_BENIGN_FILE", "PAPER_CONTROLLED_FILES", "PaperTrainingPool", "is_paper_records",
    "load_paper_controlled_test_set", "load_paper_source_file", "load_paper_sources",
    "load_paper_training_pool", "paper_sources_dir", "paper_training_pool_models",
    "read_records", "find_local", "hub_error",
    "BENIGN_COCONOT_CONTRAST", "BENIGN_GENERAL", "BENIGN_XSTEST", "COCONOT_SPLITS",
    "PAPER_SPLITS", "SORRYBENCH_GROUPS", "WILDGUARD_SPLIT", "XSTEST_SPLIT", "paper_pairing",
]
