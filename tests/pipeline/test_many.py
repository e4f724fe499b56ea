"""Several models, one run folder each: configs per model and the jobs run (locally)."""

import pytest
from conftest import write_tiny_suite

from refusal_atlas.config import load_config
from refusal_atlas.errors import UserError
from refusal_atlas.pipeline.many import MODEL_EXECUTORS, ModelJob, model_configs, run_models


def test_one_config_per_model_each_without_the_list():
    cfg = load_config(set_values=["models=[a, b/c]", "data.limit=3"])
    configs = model_configs(cfg)
    assert [c.model.name for c in configs] == ["a", "b/c"]
    assert all(c.models is None and c.data.limit == 3 for c in configs)
    assert cfg.models == ["a", "b/c"] and cfg.model.name != "a"  # the original is untouched
    plain = load_config()
    assert model_configs(plain) == [plain]


def test_a_refused_model_does_not_stop_the_others(tmp_path):
    good = load_config(overrides={"data": {"suite": str(write_tiny_suite(tmp_path / "suite"))}})
    bad = good.model_copy(deep=True)
    bad.data.suite = str(tmp_path / "no_such_prompts.jsonl")
    jobs = [ModelJob(bad, tmp_path / "bad"), ModelJob(good, tmp_path / "good")]
    with pytest.raises(UserError, match=r"1 of 2 models did not run: .*no_such_prompts"):
        run_models(jobs, ["prompts"])
    assert (tmp_path / "good" / "prompts" / "_done.json").is_file()
    assert not (tmp_path / "bad" / "prompts" / "_done.json").exists()


def test_the_executor_gets_the_whole_list(tmp_path, monkeypatch):
    seen = []

    def fake(jobs, targets, force, overwrite):
        seen.append(([j.run_dir for j in jobs], targets, force, overwrite))
        return []

    monkeypatch.setitem(MODEL_EXECUTORS, "fake", fake)
    cfg = load_config()
    jobs = [ModelJob(cfg, tmp_path / "a"), ModelJob(cfg, tmp_path / "b")]
    assert run_models(jobs, ["report"], ["geometry"], overwrite=True, executor="fake") == []
    assert seen == [([tmp_path / "a", tmp_path / "b"], ["report"], ["geometry"], True)]


@pytest.mark.parametrize("executor, dirs, message", [
    ("local", ["x", "x"], "share the run folder"),
    ("nope", ["x", "y"], "unknown executor 'nope'"),
])
def test_bad_job_lists_are_one_line(executor, dirs, message, tmp_path):
    jobs = [ModelJob(load_config(), tmp_path / d) for d in dirs]
    with pytest.raises(UserError, match=message):
        run_models(jobs, ["prompts"], executor=executor)
    assert not any((tmp_path / d).exists() for d in dirs)


def test_a_job_run_from_plain_data_uses_the_local_executor(tmp_path, monkeypatch):
    """A Ray task's body: its pipeline's sweeps start no Ray actors of their own."""
    from refusal_atlas.pipeline import many

    seen = []
    monkeypatch.setattr(many, "run_model_job",
                        lambda job, *a: seen.append(job) or many.ModelOutcome(job, "no"))
    cfg = load_config(set_values=["executor=ray", "executor.num_cpus=3"])
    assert many.run_job_here(cfg.to_dict(), str(tmp_path), ["prompts"], [], False) == "no"
    assert seen[0].config.executor.name == "local" and seen[0].run_dir == tmp_path
    assert seen[0].config.model_copy(update={"executor": cfg.executor}) == cfg
