"""Several models, one run folder each: the config's ``models`` list turned into jobs, and
the jobs run.

:func:`run_models` is the seam for running them elsewhere: it hands the list of
``(config, run_dir)`` jobs to an executor from :data:`MODEL_EXECUTORS` (here ``local``,
one after the other in this process); an executor that runs them in parallel (Ray) adds
itself to that table and calls :func:`run_model_job` for each job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..config import RunConfig
from ..errors import UserError
from ..progress import console
from .runner import run_pipeline

__all__ = ["MODEL_EXECUTORS", "ModelJob", "ModelOutcome", "model_configs", "run_model_job",
           "run_models"]


@dataclass(frozen=True)
class ModelJob:
    """One model's run: its config (``model.name`` set, ``models`` None) and run folder."""

    config: RunConfig
    run_dir: Path


@dataclass(frozen=True)
class ModelOutcome:
    """How one job ended: its run folder, and the one-line error when it was refused."""

    job: ModelJob
    error: str | None = None


def model_configs(cfg: RunConfig) -> list[RunConfig]:
    """One config per model of ``cfg.models`` (``model.name`` set to it, ``models`` None);
    ``[cfg]`` when it lists none.

    Args:
        cfg: the run config.

    Example:
        >>> from refusal_atlas.config import load_config
        >>> [c.model.name for c in model_configs(load_config(set_values=["models=[a,b]"]))]
        ['a', 'b']
    """
    if not cfg.models:
        return [cfg]
    out = []
    for name in cfg.models:
        one = cfg.model_copy(deep=True)
        one.models = None
        one.model.name = name
        out.append(one)
    return out


def run_model_job(job: ModelJob, targets: Sequence[str], force: Iterable[str] = (),
                  overwrite: bool = False) -> ModelOutcome:
    """Run one job's pipeline; a refused run (``UserError``) is its outcome's ``error``, not
    an exception, so the other models still run. Ctrl-C stops everything."""
    try:
        run_pipeline(job.config, job.run_dir, list(targets), list(force), overwrite=overwrite)
    except UserError as exc:
        return ModelOutcome(job, str(exc))
    return ModelOutcome(job)


def _run_locally(jobs: Sequence[ModelJob], targets: Sequence[str], force: Sequence[str],
                 overwrite: bool) -> list[ModelOutcome]:
    outcomes = []
    for i, job in enumerate(jobs, 1):
        console.rule(f"model {i}/{len(jobs)}: {job.config.model.name} -> {job.run_dir}")
        outcomes.append(run_model_job(job, targets, force, overwrite))
    return outcomes


ModelExecutor = Callable[[Sequence[ModelJob], Sequence[str], Sequence[str], bool],
                         list[ModelOutcome]]
MODEL_EXECUTORS: dict[str, ModelExecutor] = {"local": _run_locally}
"""How a list of model jobs is run: ``local`` runs them one after the other here."""


def run_models(jobs: Sequence[ModelJob], targets: Sequence[str], force: Iterable[str] = (), *,
               overwrite: bool = False, executor: str = "local") -> list[ModelOutcome]:
    """Run every model's pipeline in its own run folder.

    Args:
        jobs: one :class:`ModelJob` per model (:func:`model_configs` gives the configs).
        targets: the stages to run (and what they need), as for ``run_pipeline``.
        force: stages to redo.
        overwrite: let other settings replace finished stages of a run folder.
        executor: a key of :data:`MODEL_EXECUTORS`.

    Raises:
        UserError: two jobs share a run folder, the executor is unknown, or a model's run
            was refused (after every other model has run), naming each.

    Example:
        >>> jobs = [ModelJob(c, Path("runs") / c.model.name) for c in model_configs(cfg)]  # doctest: +SKIP
        >>> run_models(jobs, ["report"])  # doctest: +SKIP
    """
    dirs = [j.run_dir.resolve() for j in jobs]
    twice = sorted({str(d) for d in dirs if dirs.count(d) > 1})
    if twice:
        raise UserError(f"two models would share the run folder {twice[0]}; give models whose "
                        "names differ in their last part, or run them one at a time with --out")
    if executor not in MODEL_EXECUTORS:
        raise UserError(f"unknown executor {executor!r} for several models; known: "
                        f"{', '.join(MODEL_EXECUTORS)}")
    outcomes = MODEL_EXECUTORS[executor](list(jobs), list(targets), list(force), overwrite)
    failed = [o for o in outcomes if o.error]
    if failed:
        raise UserError(f"{len(failed)} of {len(outcomes)} models did not run: " + "; ".join(
            f"{o.job.config.model.name}: {o.error}" for o in failed))
    return outcomes
