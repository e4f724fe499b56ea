"""Executors by name; the local one runs every batch in order."""

import pytest

from refusal_atlas.errors import UserError
from refusal_atlas.sweeps import EXECUTORS, BatchResult, LocalExecutor, SweepBatch, get_executor


def test_get_executor_and_local_order():
    assert isinstance(get_executor(" Local "), LocalExecutor)
    assert EXECUTORS["local"] is LocalExecutor
    with pytest.raises(UserError, match="unknown executor"):
        get_executor("ray-nope")
    batches = [SweepBatch(i, ()) for i in range(3)]
    results = list(LocalExecutor().run(batches, lambda b: BatchResult(b, [], [])))
    assert [r.batch.index for r in results] == [0, 1, 2]


def test_ray_by_name_without_ray_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"pip install 'refusal-atlas\[ray\]'") as err:
        get_executor("ray", num_gpus=1)
    assert "\n" not in str(err.value)


def test_executor_settings_in_the_config():
    from refusal_atlas.config import load_config
    from refusal_atlas.config.migrate import migrate_config

    cfg = load_config(set_values=["executor=ray"])
    assert cfg.executor.name == "ray" and cfg.executor.options()["num_gpus"] == 0
    cfg = load_config(overrides={"executor": {"name": "Ray", "num_gpus": 1, "actors": 8}})
    assert (cfg.executor.name, cfg.executor.actors, cfg.executor.num_gpus) == ("ray", 8, 1.0)
    assert load_config().executor.options() == {}
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        load_config(set_values=["executor.name=dask"])
    # the key of earlier releases (steering.executor) still loads
    assert migrate_config({"steering": {"executor": "local", "alphas": [1]}}) == {
        "steering": {"alphas": [1]}, "executor": {"name": "local"}}


def test_the_executor_option_sets_the_executor_section():
    from refusal_atlas.cli.options import build_config

    assert build_config(executor="ray").executor.name == "ray"
    assert build_config().executor.name == "local"
