"""Public prompt datasets, one module each, all read through the skeleton in :mod:`.base`.

Every loader takes ``path=``: ``None`` loads the dataset from the Hugging Face hub with
``datasets`` (ids, configs and splits are each module's spec), a file or folder loads a
local copy with the same schema (the hub's file layout or the upstream GitHub file names
both work). Hub problems (gated dataset, no network) become one
:class:`~refusal_atlas.errors.UserError` that says what to do.

Prompt ids are stable and derived from the source row (``wildguardtest/123``,
``xstest/17``, ``coconot/original/bajp42a``, ``sorrybench/392``); the source's own fields
go to ``Prompt.meta``. Prompts of the non-compliant side get the paper's split name as
``Prompt.split``; benign prompts get the name of the benign pool they belong to. See
``docs/data.md``.
"""

from .base import RowRule, SourceRow, SourceSpec, build_prompts, load_source
from .coconot import (
    COCONOT,
    COCONOT_FILES,
    COCONOT_REPO,
    coconot_split_name,
    load_coconot,
    load_coconot_contrast,
)
from .refusal_direction import REFUSAL_DIRECTION_FILES, load_refusal_direction
from .sorrybench import (
    SORRYBENCH,
    SORRYBENCH_FILES,
    SORRYBENCH_REPO,
    SORRYBENCH_STYLE,
    load_sorrybench,
    sorrybench_split_name,
)
from .wildguard import (
    WILDGUARD,
    WILDGUARD_FILES,
    WILDGUARD_REPO,
    load_wildguardtest,
    wildguardtest_pools,
)
from .xstest import XSTEST, XSTEST_FILES, XSTEST_REPO, load_xstest

__all__ = [
    "COCONOT", "COCONOT_FILES", "COCONOT_REPO",
    "REFUSAL_DIRECTION_FILES",
    "SORRYBENCH", "SORRYBENCH_FILES", "SORRYBENCH_REPO", "SORRYBENCH_STYLE",
    "WILDGUARD", "WILDGUARD_FILES", "WILDGUARD_REPO",
    "XSTEST", "XSTEST_FILES", "XSTEST_REPO",
    "RowRule", "SourceRow", "SourceSpec", "build_prompts", "load_source",
    "coconot_split_name", "load_coconot", "load_coconot_contrast",
    "load_refusal_direction",
    "load_sorrybench", "sorrybench_split_name",
    "load_wildguardtest", "wildguardtest_pools",
    "load_xstest",
]
