"""Several models, one run folder each: the config's ``models`` list turned into jobs, and
the jobs run.

:func:`run_models` is the seam for running them elsewhere: it hands the list of
``(config, run_dir)`` jobs to an executor from :data:`MODEL_EXECUTORS`: ``local`` runs
them one after the other in this process, ``ray`` runs each model's whole pipeline as one
Ray task, all at once. Either calls :func:`run_model_job` for each job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ..config import RunConfig
from ..errors import UserError
from ..hf import first_line
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


def run_job_here(config: dict, run_dir: str, targets: Sequence[str], force: Sequence[str],
                 overwrite: bool, *, cwd: str | None = None, num_threads: int | None = None,
                 env: dict[str, str] | None = None) -> str | None:
    """Run one job from plain data in this process (a Ray task's body): the pipeline with
    the local executor, so its sweeps start no Ray actors of their own.

    Args:
        config: the job's ``RunConfig.to_dict()``.
        run_dir: its run folder.
        targets, force, overwrite: as for :func:`run_model_job`.
        cwd: the driver's working folder, for relative paths (when it exists here).
        num_threads: torch CPU threads (the task's ``num_cpus``).
        env: environment variables to set first (the driver's ``REFUSAL_ATLAS_*``).

    Returns:
        None, or the one-line error of a refused run.

    Example:
        >>> run_job_here(cfg.to_dict(), "runs/a", ["labels"], [], False)  # doctest: +SKIP
    """
    os.environ.update(env or {})
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    if num_threads:
        torch.set_num_threads(num_threads)
    cfg = RunConfig.model_validate(config)
    cfg.executor = cfg.executor.model_copy(update={"name": "local"})  # no nested Ray actors
    return run_model_job(ModelJob(cfg, Path(run_dir)), targets, force, overwrite).error


def _run_locally(jobs: Sequence[ModelJob], targets: Sequence[str], force: Sequence[str],
                 overwrite: bool) -> list[ModelOutcome]:
    outcomes = []
    for i, job in enumerate(jobs, 1):
        console.rule(f"model {i}/{len(jobs)}: {job.config.model.name} -> {job.run_dir}")
        outcomes.append(run_model_job(job, targets, force, overwrite))
    return outcomes


def run_on_ray(jobs: Sequence[ModelJob], targets: Sequence[str], force: Sequence[str],
               overwrite: bool) -> list[ModelOutcome]:
    """Each job's whole pipeline as one Ray task (:func:`run_job_here`), all at once, with
    the first job's ``executor`` settings (``address``, ``num_cpus``, ``num_gpus`` per
    task). A refused run is its outcome's error, as with ``local``; a worker that died is
    one too (re-run to resume); any other exception is raised after every task has ended.

    Example:
        >>> run_models(jobs, ["report"], executor="ray")  # doctest: +SKIP
    """
    from ..sweeps.ray_executor import connect, import_ray

    ray = import_ray()
    settings = jobs[0].config.executor
    connect(ray, settings.address)
    task = ray.remote(run_job_here).options(num_cpus=settings.num_cpus,
                                            num_gpus=settings.num_gpus, max_retries=0)
    env = {k: v for k, v in os.environ.items() if k.startswith("REFUSAL_ATLAS_")}
    refs = {task.remote(job.config.to_dict(), str(job.run_dir.resolve()), list(targets),
                        list(force), overwrite, cwd=os.getcwd(),
                        num_threads=max(1, round(settings.num_cpus)), env=env): i
            for i, job in enumerate(jobs)}
    console.print(f"running {len(jobs)} models on Ray, {settings.num_cpus:g} CPUs"
                  + (f" and {settings.num_gpus:g} GPUs" if settings.num_gpus else "") + " each")
    errors: dict[int, str | None] = {}
    crash: BaseException | None = None
    try:
        pending = list(refs)
        while pending:
            (ref,), pending = ray.wait(pending, num_returns=1)
            i = refs[ref]
            try:
                errors[i] = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                crash = crash or (exc.cause if isinstance(exc.cause, Exception) else exc)
                errors[i] = f"failed: {first_line(exc.cause or exc)}"
            except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
                errors[i] = f"its Ray worker died ({first_line(exc)}); re-run to resume"
            status = "done" if errors[i] is None else f"not done: {errors[i]}"
            console.print(f"model {len(errors)}/{len(jobs)} {jobs[i].config.model.name}: {status}")
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    if crash is not None:
        raise crash
    return [ModelOutcome(job, errors[i]) for i, job in enumerate(jobs)]


ModelExecutor = Callable[[Sequence[ModelJob], Sequence[str], Sequence[str], bool],
                         list[ModelOutcome]]
MODEL_EXECUTORS: dict[str, ModelExecutor] = {"local": _run_locally, "ray": run_on_ray}
"""How a list of model jobs is run: ``local`` one after the other here, ``ray`` each
model's pipeline as one Ray task, in parallel (``executor.num_cpus`` / ``num_gpus`` each)."""


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
