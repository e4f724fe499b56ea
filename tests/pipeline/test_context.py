"""A run owns one executor: every stage with work units uses it, and it is closed when the
run ends, however it ends. On Ray the same actors serve every stage and die with the run."""

import json
import time

import pytest

from refusal_atlas.pipeline import run_pipeline
from refusal_atlas.sweeps import LocalExecutor


class Recording(LocalExecutor):
    """The local executor, recording which tasks it ran and whether it was closed."""

    made: list["Recording"] = []

    def __init__(self):
        self.tasks, self.closed = [], 0
        Recording.made.append(self)

    def run(self, units, task):
        self.tasks.append(type(task).__name__)
        yield from super().run(units, task)

    def close(self):
        self.closed += 1


@pytest.fixture
def recording(monkeypatch):
    Recording.made = []
    monkeypatch.setattr("refusal_atlas.pipeline.context.get_executor",
                        lambda name, **options: Recording())
    return Recording.made


def test_one_executor_serves_every_stage_and_is_closed(tiny_config, tmp_path, recording):
    run_pipeline(tiny_config, tmp_path / "run", ["steering"])
    (executor,) = recording
    assert executor.tasks == ["OOMBackoff", "ActivationShards", "InduceLayers", "OOMBackoff"]
    assert executor.closed == 1


def test_the_executor_is_closed_when_a_stage_fails(tiny_config, tmp_path, recording,
                                                   monkeypatch):
    from refusal_atlas.pipeline.runner import StageInterrupted
    from refusal_atlas.pipeline.stages import layer_scan

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(layer_scan, "scan_activations", interrupted)
    with pytest.raises(StageInterrupted):
        run_pipeline(tiny_config, tmp_path / "run", ["layer_scan"])
    (executor,) = recording
    assert executor.tasks == ["OOMBackoff"] and executor.closed == 1


def test_on_ray_the_same_actors_serve_every_stage(tiny_config, tmp_path, ray_cluster,
                                                  monkeypatch):
    """labels, the layer scan (activation shards, induce layers) and steering on the same two
    actors, killed when the run ends; and every artifact the local run's."""
    from refusal_atlas.sweeps.ray_executor import RayExecutor

    calls, executors = [], []
    real_run = RayExecutor.run

    def spy(self, units, task):
        yield from real_run(self, units, task)
        executors.append(self)
        calls.append((type(task).__name__,
                      sorted(s.actor._actor_id.hex() for s in self.slots if s.alive)))

    monkeypatch.setattr(RayExecutor, "run", spy)
    run_pipeline(tiny_config, tmp_path / "local", ["steering"])
    cfg = tiny_config.model_copy(deep=True)
    cfg.executor = {"name": "ray", "actors": 2}
    run_pipeline(cfg, tmp_path / "ray", ["steering"])

    assert [name for name, _ in calls] == ["OOMBackoff", "ActivationShards", "InduceLayers",
                                           "OOMBackoff"]
    assert len({tuple(actors) for _, actors in calls}) == 1 and len(calls[0][1]) == 2
    (executor,) = set(executors)
    assert len(executor.slots) == 2 and not any(s.alive for s in executor.slots)
    for slot in executor.slots:  # really gone, not only marked
        deadline = time.monotonic() + 30
        with pytest.raises(ray_cluster.exceptions.RayActorError):
            while time.monotonic() < deadline:  # ray.kill takes effect asynchronously
                ray_cluster.get(slot.actor.pid.remote(), timeout=30)
                time.sleep(0.2)

    def read(run, path):
        return json.loads((tmp_path / run / path).read_text())

    for path in ("layer_scan/layer_scan.json", "layer_scan/layer.json", "labels/counts.json"):
        assert read("ray", path) == read("local", path), path
    local, remote = read("local", "steering/metrics.json"), read("ray", "steering/metrics.json")
    assert local.pop("sweep")["executor"] == "local" and remote.pop("sweep")["executor"] == "ray"
    assert remote == local
    responses = [sorted((tmp_path / run / "labels" / "responses.jsonl").read_text().splitlines(),
                        key=lambda x: json.loads(x)["prompt_id"]) for run in ("local", "ray")]
    assert responses[0] == responses[1]
