"""Every stage of the pipeline, in the order they run. This list is the pipeline.

To add a stage: write ``stages/<name>.py`` with its settings, its ``run(ctx, out_dir,
resuming)`` wrapper and ``STAGE = Stage(...)``, and add it here after the stages it reads.
"""

from __future__ import annotations

from ..stage import Stage
from . import (
    ablation,
    activations,
    cosmic,
    directions,
    geometry,
    labels,
    layer_robustness,
    layer_scan,
    pools,
    prompts,
    report,
    sae,
    sae_analysis,
    sae_steering,
    steering,
    style,
    style_vs_rate,
    subspace,
    tail_latents,
    test_set,
)

STAGES: tuple[Stage, ...] = (
    prompts.STAGE,
    labels.STAGE,
    pools.STAGE,
    test_set.STAGE,
    layer_scan.STAGE,
    activations.STAGE,
    directions.STAGE,
    geometry.STAGE,
    steering.STAGE,
    ablation.STAGE,
    sae.STAGE,
    sae_analysis.STAGE,
    sae_steering.STAGE,
    style.STAGE,
    style_vs_rate.STAGE,
    subspace.STAGE,
    tail_latents.STAGE,
    layer_robustness.STAGE,
    cosmic.STAGE,
    report.STAGE,
)


def stage_map() -> dict[str, Stage]:
    """``{name: Stage}`` in pipeline order."""
    return {s.name: s for s in STAGES}


def _check_order() -> None:
    """A stage may only read stages listed before it: the list is a topological order."""
    seen: set[str] = set()
    for stage in STAGES:
        missing = [d for d in stage.deps if d not in seen]
        assert not missing, f"stage {stage.name} reads {missing}, listed after it"
        seen.add(stage.name)


_check_order()
