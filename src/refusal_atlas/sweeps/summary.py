"""``metrics.json`` of a sweep: :func:`~refusal_atlas.metrics.summarise` with the trade-off gap's uncertainty."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..metrics import summarise

GAP_UNCERTAINTY = {"n_boot": 1000, "n_perm": 1000, "seed": 0}
"""Bootstrap / permutation settings for the trade-off gap in ``metrics.json``."""


def sweep_metrics(rows: Sequence[Mapping[str, Any]], judge, *,
                  alphas: Mapping[str, Any] | None = None) -> dict:
    """Everything for a sweep's ``metrics.json``, the gap's uncertainty included.

    Args:
        rows: judged rows (:attr:`SweepResult.rows`).
        judge: the judge that judged them (its ``name`` and ``approximate`` are recorded).
        alphas: how the alphas were chosen (:func:`resolve_alphas`' info), if any.

    Example::

        summary = sweep_metrics(run_sweep(...).rows, judge, alphas=alpha_info)
    """
    # GAP_UNCERTAINTY is read at call time so tests can make it cheaper.
    return summarise(rows, judge=judge.name, approximate=bool(getattr(judge, "approximate", False)),
                     alphas=alphas, uncertainty=GAP_UNCERTAINTY)
