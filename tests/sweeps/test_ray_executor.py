"""The Ray executor on a real local cluster (``ray_cluster``, started once per test session):
the same rows as the local executor, token for token, and every row exactly once after a
worker is killed."""

import json

import pytest
import torch

from refusal_atlas.chat import ChatFormatter
from refusal_atlas.judges import get_judge
from refusal_atlas.sweeps import ablation_grid, run_sweep, steering_grid
from refusal_atlas.sweeps.ray_executor import RayExecutor

from .helpers import tiny_prompts, tiny_vectors

ray = pytest.importorskip("ray")


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


def _bits(path):
    """A safetensors file's metadata and each tensor's bytes (its header's key order is not
    fixed from one process to the next)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return f.metadata(), {k: f.get_tensor(k).contiguous().view(-1).view(torch.uint8)
                              .numpy().tobytes() for k in f.keys()}


def test_models_on_ray_give_the_local_directions(tiny_config, tiny_model_dirs, tmp_path,
                                                 ray_cluster):
    """`run --models A,B --executor ray`: each model's pipeline is one Ray task (its sweeps
    on the local executor) and gives the local run's directions, byte for byte."""
    from refusal_atlas.pipeline.many import ModelJob, run_models

    configs = []
    for family in ("qwen2", "llama"):
        cfg = tiny_config.model_copy(deep=True)
        cfg.model.name = str(tiny_model_dirs[family])
        configs.append(cfg)
    local = [ModelJob(c, tmp_path / "local" / c.model.name.split("/")[-1]) for c in configs]
    run_models(local, ["directions"])
    for c in configs:
        c.executor = {"name": "ray", "num_cpus": 1}
    remote = [ModelJob(c, tmp_path / "ray" / c.model.name.split("/")[-1]) for c in configs]
    outcomes = run_models(remote, ["directions"], executor="ray")
    assert [o.error for o in outcomes] == [None, None]
    for a, b in zip(local, remote):
        files = sorted(p.relative_to(a.run_dir) for p in a.run_dir.rglob("*.safetensors"))
        assert any(f.parts[0] == "directions" for f in files)
        assert files == sorted(p.relative_to(b.run_dir) for p in b.run_dir.rglob("*.safetensors"))
        for f in files:
            assert _bits(a.run_dir / f) == _bits(b.run_dir / f), f
        assert not list(b.run_dir.rglob("_lock*"))


def test_a_refused_model_on_ray_is_one_line_and_the_other_runs(tiny_config, tmp_path,
                                                                ray_cluster):
    from refusal_atlas.errors import UserError
    from refusal_atlas.pipeline.many import ModelJob, run_models

    good = tiny_config.model_copy(deep=True)
    good.executor = {"name": "ray"}
    bad = good.model_copy(deep=True)
    bad.data.suite = str(tmp_path / "no_such_prompts.jsonl")
    jobs = [ModelJob(bad, tmp_path / "bad"), ModelJob(good, tmp_path / "good")]
    with pytest.raises(UserError, match=r"1 of 2 models did not run: .*no_such_prompts"):
        run_models(jobs, ["prompts"], executor="ray")
    assert (tmp_path / "good" / "prompts" / "_done.json").is_file()


def test_labelling_on_ray_gives_the_local_responses(qwen_tiny, tmp_path, ray_cluster):
    from refusal_atlas.data.prompts import Prompt
    from refusal_atlas.labels import generate_responses

    prompts = [Prompt(f"p{i}", "word " * (1 + i % 4) + f"prompt {i}", "A", True)
               for i in range(9)]
    fmt = ChatFormatter(qwen_tiny.tokenizer)
    local = generate_responses(qwen_tiny, fmt, prompts, tmp_path / "local.jsonl",
                               max_new_tokens=5, batch_size=2)
    store = tmp_path / "ray.jsonl"
    remote = generate_responses(qwen_tiny, fmt, prompts, store, max_new_tokens=5, batch_size=2,
                                executor=RayExecutor(actors=2, num_cpus=1))
    assert remote == local
    ids = [json.loads(x)["prompt_id"] for x in store.read_text().splitlines()]
    assert sorted(ids) == sorted(local)  # each row written once


def test_the_actor_body_builds_each_task_once(qwen_tiny, monkeypatch):
    """ModelWorker (what each actor runs, here in this process): one model load, one task
    build per task key, the driver's results."""
    from refusal_atlas.sweeps import BatchGenerator, plan_batches
    from refusal_atlas.sweeps import worker as worker_module
    from refusal_atlas.sweeps.ray_executor import ModelWorker

    fmt = ChatFormatter(qwen_tiny.tokenizer)
    generator = BatchGenerator(qwen_tiny, fmt, tiny_vectors(qwen_tiny), max_new_tokens=3)
    prompts = tiny_prompts()
    batches = plan_batches(steering_grid(["A"], [0, 4]), prompts,
                           {p.id: len(fmt.encode(p.text)) for p in prompts}, 4)
    body = ModelWorker(qwen_tiny.load_args, device="cpu", num_threads=1)
    builds = []
    real = worker_module.WORKER_TASKS["sweep"]
    monkeypatch.setitem(worker_module.WORKER_TASKS, "sweep", real.__class__(
        lambda lm, spec: builds.append(1) or real.build(lm, spec), real.encode, real.decode))
    spec = generator.worker_spec()
    for batch in batches:
        data = body.run_unit("task-1", [spec], batch.to_dict())
        assert data["responses"] == generator(batch).responses
    body.run_unit("task-2", [spec], batches[0].to_dict())
    assert len(builds) == 2


def test_actors_ask_for_the_gpus_a_spread_model_needs(monkeypatch):
    """executor.num_gpus reaches each actor's Ray resources (a model spread over 2 GPUs with
    model.device_map asks for 2 per actor); a cluster without them is one line."""
    from types import SimpleNamespace

    from refusal_atlas.errors import UserError
    from refusal_atlas.sweeps import ray_executor

    options = []

    class Remote:
        def options(self, **kw):
            options.append(kw)
            return SimpleNamespace(remote=lambda *args: SimpleNamespace(args=args))

    fake = SimpleNamespace(remote=lambda cls: Remote(), put=lambda x: x,
                           cluster_resources=lambda: {"CPU": 16.0, "GPU": 4.0})
    monkeypatch.setattr(ray_executor, "import_ray", lambda: fake)
    executor = RayExecutor(num_gpus=2, num_cpus=4)
    executor._pool({"name_or_path": "m", "device_map": "auto"}, n_units=10)
    assert [o["num_gpus"] for o in options] == [2.0, 2.0]  # 4 GPUs / 2 per actor
    assert all(s.actor.args[1] == "cuda" for s in executor.slots)
    fake.cluster_resources = lambda: {"CPU": 16.0, "GPU": 1.0}
    with pytest.raises(UserError, match="num_gpus=2 but the Ray cluster has 1 GPUs"):
        RayExecutor(num_gpus=2)._n_actors(4)
