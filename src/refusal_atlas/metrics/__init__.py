"""Sweep metrics: pure functions over judged result rows; nothing here touches a model.

* ``rates``: RR / ORR / accuracy / transitions per condition, and the ablation table;
* ``dose_response``: one curve per direction over its alphas, RR gained per unit ORR;
* ``tradeoff``: the trade-off gap between curves (:data:`GAP_DEFINITION`);
* ``uncertainty``: its bootstrap CI and permutation p-value;
* ``summary``: everything for ``metrics.json``.

The figures live in :mod:`refusal_atlas.plots.sweeps`.

Example:
    >>> from refusal_atlas import metrics
    >>> summary = metrics.summarise(rows, judge="substring", approximate=True)  # doctest: +SKIP
    >>> metrics.compact_summary(summary)["tradeoff_gap"]  # doctest: +SKIP
"""

from .dose_response import (
    RR_PER_ORR_DEFINITION,
    curve_key,
    curve_label,
    curves,
    dose_response_table,
    rr_per_orr,
)
from .rates import GROUPS, RATE_DEFINITIONS, ablation_table, condition_metrics
from .summary import compact_summary, summarise
from .tradeoff import GAP_DEFINITION, pair_gap, tradeoff_gap
from .uncertainty import UNCERTAINTY_DEFINITION, gap_uncertainty

__all__ = [
    "GAP_DEFINITION",
    "GROUPS",
    "RATE_DEFINITIONS",
    "RR_PER_ORR_DEFINITION",
    "UNCERTAINTY_DEFINITION",
    "ablation_table",
    "compact_summary",
    "condition_metrics",
    "curve_key",
    "curve_label",
    "curves",
    "dose_response_table",
    "gap_uncertainty",
    "pair_gap",
    "rr_per_orr",
    "summarise",
    "tradeoff_gap",
]
