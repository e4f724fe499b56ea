"""The Ray executor: a sweep's batches on Ray actors that each hold one model replica.

Each actor loads the model itself from the driver's worker spec (the model's name or
path, dtype and chat template; never a pickled model) on its own device, with the
resources the settings ask for (``num_cpus``, ``num_gpus``). Batches go to the actors as
tasks (``SweepBatch.to_dict()``), at most ``max_in_flight`` per actor, and results are
yielded as they complete (``ray.wait``); the engine writes each one to the resumable store
at once. A batch whose actor died is sent to another actor (a new one is started in the
dead one's place), so every row is written exactly once; a killed driver resumes from the
store as with the local executor.

Ray is an optional extra (``pip install 'refusal-atlas[ray]'``): this module imports it
only when an executor is built. It joins the cluster at ``address`` (or ``RAY_ADDRESS``)
or starts a local one, which lives as long as the process.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from ..errors import UserError
from ..hf import first_line
from .batches import BatchResult, GenerateBatch, SweepBatch
from .worker import generator_from_spec, result_from_dict, result_to_dict

INSTALL_HINT = "pip install 'refusal-atlas[ray]'"


def import_ray():
    """The ``ray`` module, or a one-line :class:`UserError` saying how to install it.

    Example::

        ray = import_ray()
    """
    try:
        import ray  # optional extra: only when the Ray executor is asked for
    except ImportError:
        raise UserError(f"the ray executor needs Ray, which is not installed: {INSTALL_HINT}") \
            from None
    return ray


def connect(ray, address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (else ``RAY_ADDRESS``), or start a local one.

    Does nothing when this process is already connected (``ray.init`` was called).

    Args:
        ray: the ``ray`` module (:func:`import_ray`).
        address: ``ray://host:10001``, ``host:6379`` or ``auto``; None: ``RAY_ADDRESS``, and
            without it a new local cluster.

    Example::

        connect(import_ray(), "auto")
    """
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise UserError(f"cannot connect to {where}: {first_line(exc)}") from None


class SweepWorker:
    """The body of one Ray actor: one model replica, generating the batches it is sent.

    Args:
        spec: :meth:`~.batches.BatchGenerator.worker_spec` of the driver's generator.
        device: where this actor runs the model; None: the spec's device.
        num_threads: torch CPU threads (the actor's ``num_cpus``).

    Example::

        worker = SweepWorker(generate_batch.worker_spec(), device="cpu", num_threads=1)
        data = worker.generate_batch(batch.to_dict())
    """

    def __init__(self, spec: dict[str, Any], device: str | None = None,
                 num_threads: int | None = None):
        if num_threads:
            torch.set_num_threads(num_threads)
        self.generate = generator_from_spec(spec, device=device)

    def generate_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return result_to_dict(self.generate(SweepBatch.from_dict(batch)))

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Slot:
    """One actor and the batches it holds now."""

    actor: Any
    in_flight: int = 0
    alive: bool = True


class RayExecutor:
    """Runs a sweep's batches on Ray actors, one model replica each.

    Args:
        address: the cluster (``RAY_ADDRESS`` when None; a new local cluster without it).
        actors: how many actors (model replicas); None: as many as the cluster's free CPUs
            (or GPUs, with ``num_gpus``) allow, at most one per batch.
        num_cpus: CPUs per actor (also its torch threads).
        num_gpus: GPUs per actor (fractions share a GPU).
        device: the actors' model device; None: ``cuda`` with ``num_gpus``, else the
            driver model's device.
        max_in_flight: batches sent to one actor before it returns one (2 hides the
            round trip).
        max_actor_failures: actors that may die (each replaced, its batches resent)
            before the sweep gives up.

    Example::

        result = run_sweep(lm, fmt, prompts, conditions, vectors, out_dir, max_new_tokens=64,
                           batch_size=32, judge=judge, executor=RayExecutor(num_gpus=1))
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, actors: int | None = None,
                 num_cpus: float = 1.0, num_gpus: float = 0.0, device: str | None = None,
                 max_in_flight: int = 2, max_actor_failures: int = 3):
        self.ray = import_ray()
        self.address, self.actors, self.device = address, actors, device
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self.max_in_flight, self.max_actor_failures = int(max_in_flight), int(max_actor_failures)
        self.slots: list[_Slot] = []
        """The actors of the sweep in progress (tests kill one of them)."""
        self.n_actor_failures = 0

    def _n_actors(self, n_batches: int) -> int:
        if self.actors:
            return max(1, min(self.actors, n_batches))
        free = self.ray.cluster_resources()
        n = int(free.get("CPU", 1) // self.num_cpus) if self.num_cpus else n_batches
        if self.num_gpus:
            n = min(n, int(free.get("GPU", 0) // self.num_gpus))
            if n < 1:
                raise UserError(f"executor.num_gpus={self.num_gpus:g} but the Ray cluster has "
                                f"{free.get('GPU', 0):g} GPUs")
        return max(1, min(n, n_batches))

    def _start(self, spec_ref) -> _Slot:
        device = self.device or ("cuda" if self.num_gpus else None)
        actor = self.ray.remote(SweepWorker).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=0,
            max_task_retries=0).remote(spec_ref, device, max(1, round(self.num_cpus)))
        slot = _Slot(actor)
        self.slots.append(slot)
        return slot

    def _actor_died(self, slot: _Slot, exc: Exception, spec_ref) -> None:
        if getattr(exc, "actor_init_failed", False):
            detail = [x for x in str(exc).strip().splitlines() if x.strip()][-1:] or [""]
            raise UserError(f"a Ray worker could not load the model: {detail[0].strip()}") \
                from None
        if not slot.alive:
            return
        slot.alive = False
        self.n_actor_failures += 1
        if self.n_actor_failures > self.max_actor_failures:
            raise RuntimeError(f"{self.n_actor_failures} Ray workers died (executor."
                               f"max_actor_failures={self.max_actor_failures}); last: "
                               f"{first_line(exc)}; re-run to resume")
        self._start(spec_ref)

    def run(self, batches: Sequence[SweepBatch],
            generate_batch: GenerateBatch) -> Iterator[BatchResult]:
        """Yield one result per batch as the actors finish them (any order)."""
        if not batches:
            return
        try:
            spec = generate_batch.worker_spec()
        except AttributeError:
            raise UserError("the ray executor needs a batch generator with a worker_spec() "
                            "(BatchGenerator): it loads the model again in every worker") from None
        ray = self.ray
        connect(ray, self.address)
        spec_ref = ray.put(spec)
        self.slots, self.n_actor_failures = [], 0
        for _ in range(self._n_actors(len(batches))):
            self._start(spec_ref)
        pending = deque(batches)
        in_flight: dict[Any, tuple[SweepBatch, _Slot]] = {}
        try:
            while pending or in_flight:
                for slot in sorted((s for s in self.slots if s.alive), key=lambda s: s.in_flight):
                    while pending and slot.in_flight < self.max_in_flight:
                        batch = pending.popleft()
                        in_flight[slot.actor.generate_batch.remote(batch.to_dict())] = (batch, slot)
                        slot.in_flight += 1
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                batch, slot = in_flight.pop(ref)
                slot.in_flight -= 1
                try:
                    data = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    pending.appendleft(batch)  # to another actor; the store dedupes anyway
                    self._actor_died(slot, exc, spec_ref)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
                yield result_from_dict(batch, data)
        finally:
            for slot in self.slots:
                ray.kill(slot.actor)
