"""The Ray executor on a real local cluster (started once per test session): the same rows as
the local executor, token for token, and every row exactly once after a worker is killed."""

import json

import pytest

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.judges import get_judge
from refusal_atlas.sweeps import ablation_grid, run_sweep, steering_grid
from refusal_atlas.sweeps.ray_executor import RayExecutor

from .helpers import tiny_prompts, tiny_vectors

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _sweep(lm, folder, executor=None, generate_batch=None):
    fmt = ChatFormatter(lm.tokenizer)
    vectors = tiny_vectors(lm)
    conditions = steering_grid(["A", "B"], [0, 4]) + ablation_grid(["A"], baseline=False)
    return run_sweep(lm, fmt, tiny_prompts(), conditions, vectors, folder, max_new_tokens=5,
                     batch_size=3, judge=get_judge("substring"), executor=executor,
                     generate_batch=generate_batch)


def test_ray_gives_the_local_rows(qwen_tiny, tmp_path, ray_cluster):
    local = _sweep(qwen_tiny, tmp_path / "local")
    remote = _sweep(qwen_tiny, tmp_path / "ray", RayExecutor(actors=2, num_cpus=1))
    assert remote.rows == local.rows  # fp32, one thread each: token-identical responses
    assert remote.stats["executor"] == "ray" and remote.stats["n_units_this_run"] > 2


class KillAfterFirst(RayExecutor):
    """Kills the actor that returned the first result, while it still holds batches."""

    def run(self, batches, generate_batch):
        killed = False
        for result in super().run(batches, generate_batch):
            if not killed:
                ray.kill(self.slots[0].actor)
                killed = True
            yield result


def test_killed_worker_still_gives_every_row_once(qwen_tiny, tmp_path, ray_cluster):
    local = _sweep(qwen_tiny, tmp_path / "local")
    executor = KillAfterFirst(actors=1, num_cpus=1, max_in_flight=3)
    remote = _sweep(qwen_tiny, tmp_path / "ray", executor)
    assert executor.n_actor_failures == 1 and len(executor.slots) == 2
    assert remote.rows == local.rows
    lines = [json.loads(x) for x in (tmp_path / "ray" / "results.jsonl").read_text().splitlines()]
    keys = [(r["condition"], r["prompt_id"]) for r in lines]
    assert len(keys) == len(set(keys)) == len(local.rows)


def test_a_worker_that_cannot_load_the_model_is_one_line(qwen_tiny, tmp_path, ray_cluster):
    from refusal_atlas.errors import UserError
    from refusal_atlas.sweeps import BatchGenerator

    fmt = ChatFormatter(qwen_tiny.tokenizer)
    generator = BatchGenerator(qwen_tiny, fmt, tiny_vectors(qwen_tiny), max_new_tokens=2)
    spec = generator.worker_spec()
    spec["model"]["name_or_path"] = str(tmp_path / "gone")
    generator.worker_spec = lambda: spec
    with pytest.raises(UserError, match="could not load the model: .*gone"):
        _sweep(qwen_tiny, tmp_path / "ray", RayExecutor(actors=1), generator)


def test_run_with_the_ray_executor_gives_the_local_metrics(tiny_config, tmp_path, ray_cluster):
    """`refusal-atlas run --executor ray`: the steering stage's metrics equal the local ones."""
    import shutil

    from refusal_atlas.pipeline import run_pipeline

    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    run_pipeline(tiny_config, local_dir, ["steering"])
    shutil.copytree(local_dir, ray_dir)
    shutil.rmtree(ray_dir / "steering")
    cfg = tiny_config.model_copy(deep=True)
    cfg.executor = {"name": "ray", "actors": 2}
    run_pipeline(cfg, ray_dir, ["steering"])

    def metrics(run_dir):
        data = json.loads((run_dir / "steering" / "metrics.json").read_text())
        return data, data.pop("sweep")

    (local, local_stats), (remote, remote_stats) = metrics(local_dir), metrics(ray_dir)
    assert remote == local
    assert (local_stats["executor"], remote_stats["executor"]) == ("local", "ray")
    assert remote_stats["n_result_rows"] == local_stats["n_result_rows"] > 0
