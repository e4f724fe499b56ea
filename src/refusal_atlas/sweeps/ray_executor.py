"""The Ray executor: work units on Ray actors that each hold one model replica.

Each actor loads the model itself from the driver's ``load_model`` arguments (the model's
name or path, dtype, chat template, ``device_map``; never a pickled model) on its own
device, with the resources the settings ask for (``num_cpus``, ``num_gpus``: with
``model.device_map`` an actor's model spreads over its ``num_gpus`` GPUs). Units (a sweep's
or labelling's batches, the layer scan's shards and layers) go to the actors as plain data
with the task's ``worker_spec()`` (:mod:`.worker`; sent once per task, rebuilt once per
actor), at most ``max_in_flight`` per actor, and results are yielded as they complete
(``ray.wait``); a sweep writes each one to the resumable store at once. A unit whose actor
died is sent to another actor (a new one is started in the dead one's place), so every row
is written exactly once; a killed driver resumes from the store as with the local executor.

Inside ``with executor:`` the actors outlive each ``run``: every stage of a pipeline run
reuses them (one model load per actor per run) and they are killed when the block exits,
on error or Ctrl-C too. Outside such a block each ``run`` starts and kills its own.

Ray is an optional extra (``pip install 'refusal-atlas[ray]'``): this module imports it
only when an executor is built. It joins the cluster at ``address`` (or ``RAY_ADDRESS``)
or starts a local one, which lives as long as the process.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from ..allocator import keep_freed_memory
from ..errors import UserError
from ..hf import first_line
from .worker import load_worker_model, task_kind

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


class ModelWorker:
    """The body of one Ray actor: one model replica, running the units it is sent.

    Args:
        model_args: the driver model's ``load_args``.
        device: where this actor runs the model; None: the arguments' device.
        num_threads: torch CPU threads (the actor's ``num_cpus``).

    Example::

        worker = ModelWorker(lm.load_args, device="cpu", num_threads=1)
        data = worker.run_unit("k1", [ray.put(task.worker_spec())], batch.to_dict())
    """

    def __init__(self, model_args: dict[str, Any], device: str | None = None,
                 num_threads: int | None = None):
        keep_freed_memory()
        if num_threads:
            torch.set_num_threads(num_threads)
        self.lm = load_worker_model(model_args, device=device)
        self.task_key: str | None = None
        self.task: Callable[[Any], Any] | None = None

    def run_unit(self, key: str, spec_box: list, unit: Any) -> Any:
        """Run one unit of task ``key``, whose worker spec is ``spec_box[0]`` (an object ref
        in a list, so Ray fetches it only when this actor has not built the task yet)."""
        if key != self.task_key:
            spec = spec_box[0]
            if not isinstance(spec, dict):
                spec = import_ray().get(spec)
            self.task, self.task_key = task_kind(spec).build(self.lm, spec), key
        return self.task(unit)

    def pid(self) -> int:
        return os.getpid()


SweepWorker = ModelWorker
"""The earlier name of :class:`ModelWorker`."""


@dataclass
class _Slot:
    """One actor and the units it holds now."""

    actor: Any
    in_flight: int = 0
    alive: bool = True


class RayExecutor:
    """Runs work units on Ray actors, one model replica each.

    Args:
        address: the cluster (``RAY_ADDRESS`` when None; a new local cluster without it).
        actors: how many actors (model replicas); None: as many as the cluster's CPUs (or
            GPUs, with ``num_gpus``) allow, at most one per unit.
        num_cpus: CPUs per actor (also its torch threads).
        num_gpus: GPUs per actor (fractions share a GPU; more than 1, whole numbers, for a
            model spread over several GPUs with ``model.device_map``).
        device: the actors' model device; None: ``cuda`` with ``num_gpus``, else the
            driver model's device.
        max_in_flight: units sent to one actor before it returns one (2 hides the
            round trip).
        max_actor_failures: actors that may die in one ``run`` (each replaced, its units
            resent) before it gives up.

    Example::

        with RayExecutor(num_gpus=1) as executor:   # the actors serve both sweeps
            run_sweep(lm, fmt, prompts, steer, vectors, out / "steering", max_new_tokens=64,
                      batch_size=32, judge=judge, executor=executor)
            run_sweep(lm, fmt, prompts, ablate, vectors, out / "ablation", max_new_tokens=64,
                      batch_size=32, judge=judge, executor=executor)
    """

    name = "ray"
    remote = True

    def __init__(self, *, address: str | None = None, actors: int | None = None,
                 num_cpus: float = 1.0, num_gpus: float = 0.0, device: str | None = None,
                 max_in_flight: int = 2, max_actor_failures: int = 3):
        self.ray = import_ray()
        self.address, self.actors, self.device = address, actors, device
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self.max_in_flight, self.max_actor_failures = int(max_in_flight), int(max_actor_failures)
        self.slots: list[_Slot] = []
        """The actors of this executor (tests kill one of them); dead ones stay listed until
        the next ``run``."""
        self.n_actor_failures = 0
        self.held = False
        """Inside ``with executor:``: the actors outlive each ``run``."""
        self._model_key: str | None = None
        self._model_ref = None

    def __enter__(self) -> "RayExecutor":
        self.held = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.held = False
        self.close()

    def close(self) -> None:
        """Kill every actor (their model replicas go with them)."""
        for slot in self.slots:
            if slot.alive:
                try:
                    self.ray.kill(slot.actor)
                except Exception:  # noqa: BLE001 - already gone, or Ray already shut down
                    pass
                slot.alive = False
        self._model_key = self._model_ref = None

    def _n_actors(self, n_units: int) -> int:
        if self.actors:
            return max(1, min(self.actors, n_units))
        free = self.ray.cluster_resources()
        n = int(free.get("CPU", 1) // self.num_cpus) if self.num_cpus else n_units
        if self.num_gpus:
            n = min(n, int(free.get("GPU", 0) // self.num_gpus))
            if n < 1:
                raise UserError(f"executor.num_gpus={self.num_gpus:g} but the Ray cluster has "
                                f"{free.get('GPU', 0):g} GPUs")
        return max(1, min(n, n_units))

    def _start(self) -> _Slot:
        device = self.device or ("cuda" if self.num_gpus else None)
        actor = self.ray.remote(ModelWorker).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=0,
            max_task_retries=0).remote(self._model_ref, device, max(1, round(self.num_cpus)))
        slot = _Slot(actor)
        self.slots.append(slot)
        return slot

    def _pool(self, model_args: dict[str, Any], n_units: int) -> None:
        """Enough live actors for ``n_units`` holding the model ``model_args`` loads: those
        of an earlier ``run`` of the same model are kept, another model's are killed."""
        key = json.dumps(model_args, sort_keys=True, default=str)
        if key != self._model_key:
            self.close()
            self._model_key, self._model_ref = key, self.ray.put(dict(model_args))
        self.slots = [s for s in self.slots if s.alive]
        for s in self.slots:
            s.in_flight = 0
        for _ in range(self._n_actors(n_units) - len(self.slots)):
            self._start()

    def _actor_died(self, slot: _Slot, exc: Exception) -> None:
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
        self._start()

    def run(self, units: Sequence[Any], task: Callable[[Any], Any]) -> Iterator[Any]:
        """Yield ``task``'s result for each unit as the actors finish them (any order)."""
        if not units:
            return
        try:
            spec = task.worker_spec()
        except AttributeError:
            raise UserError("the ray executor needs a task with a worker_spec() (e.g. a "
                            "BatchGenerator): it loads the model again in every worker") from None
        kind = task_kind(spec)
        ray = self.ray
        connect(ray, self.address)
        self.n_actor_failures = 0
        in_flight: dict[Any, tuple[Any, _Slot]] = {}
        try:
            self._pool(spec["model"], len(units))
            key, spec_box = uuid.uuid4().hex, [ray.put(spec)]
            pending = deque(units)
            while pending or in_flight:
                for slot in sorted((s for s in self.slots if s.alive), key=lambda s: s.in_flight):
                    while pending and slot.in_flight < self.max_in_flight:
                        unit = pending.popleft()
                        ref = slot.actor.run_unit.remote(key, spec_box, kind.encode(unit))
                        in_flight[ref] = (unit, slot)
                        slot.in_flight += 1
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                unit, slot = in_flight.pop(ref)
                slot.in_flight -= 1
                try:
                    data = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    pending.appendleft(unit)  # to another actor; the store dedupes anyway
                    self._actor_died(slot, exc)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
                yield kind.decode(unit, data)
        finally:
            if not self.held:
                self.close()
            elif in_flight:  # stopped early: drop what the kept actors still hold
                for ref in in_flight:
                    try:
                        ray.cancel(ref)
                    except Exception:  # noqa: BLE001 - best effort; the results are unused
                        pass
