import pytest

from refusal_atlas.config import list_presets, load_config, parse_override
from refusal_atlas.errors import UserError


def test_presets_load_and_validate():
    assert {"demo", "paper"} <= set(list_presets())
    demo = load_config()
    assert demo.preset == "demo" and demo.model.name == "qwen2.5-coder-0.5b-instruct"
    paper = load_config(preset="paper")
    assert paper.model.name == "google/gemma-2-9b-it" and paper.activations.layer == 20
    assert paper.steering.alphas == [0, 10, 30, 60, 100]


def test_file_then_overrides_then_set_values(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  name: my/model\npools:\n  n_hr: 16\n")
    cfg = load_config(path, overrides={"pools": {"n_bc": 8}},
                      set_values=["pools.n_hr=12", "steering.alphas=[0, 2.5]"])
    assert cfg.model.name == "my/model"
    assert (cfg.pools.n_hr, cfg.pools.n_bc) == (12, 8)
    assert cfg.steering.alphas == [0, 2.5]
    assert cfg.geometry.n_resamples == 100  # untouched defaults stay


def test_toml_config(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('preset = "paper"\n[activations]\nlayer = 7\n')
    cfg = load_config(path)
    assert cfg.preset == "paper" and cfg.activations.layer == 7


@pytest.mark.parametrize("text, message", [
    ("pools:\n  n_hr: many\n", "pools.n_hr"),
    ("pools:\n  nhr: 3\n", "pools.nhr: unknown key"),
    ("colour: red\n", "colour: unknown key"),
    ("activations:\n  position: 2\n", "activations.position"),
    ("- just\n- a list\n", "mapping"),
    ("pools: [\n", "cannot parse"),
])
def test_bad_configs_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_config(path)


def test_parse_override():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=hello world") == (["a"], "hello world")
    with pytest.raises(UserError):
        parse_override("novalue")


@pytest.mark.parametrize("raw", [b"model:\n  name: caf\xe9\n",  # latin-1
                                 b"\xff\xfem\x00o\x00d\x00e\x00l\x00:\x00\n\x00"])  # UTF-16
def test_non_utf8_config_is_one_line(tmp_path, raw):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(raw)
    with pytest.raises(UserError, match="is not UTF-8 text") as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_non_utf8_config_names_the_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"model:\n  name: caf\xe9\n")
    with pytest.raises(UserError, match="line 2 has byte 0xe9"):
        load_config(path)


def test_utf8_byte_order_mark_is_not_content(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"\xef\xbb\xbfpools:\n  n_hr: 5\n")
    assert load_config(path).pools.n_hr == 5


@pytest.mark.parametrize("name, text, where", [
    ("bad.yaml", "pools: [\n", "line 2, column 1"),
    ("bad.yaml", "pools:\n  n_hr: 3\n n_bc: 4\n", "line 3, column 2"),
    ("bad.yaml", "pools:\n  - 1\n  n_hr: 3\n", "line 3, column 3"),
    ("bad.yaml", "pools:\n\tn_hr: 3\n", "line 2, column 1"),
    ("bad.toml", "[pools]\nn_hr = \n", "line 2, column 8"),
    ("bad.json", '{"pools":\n  {"n_hr": }}', "line 2, column 12"),
])
def test_syntax_errors_keep_their_line_and_column(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and "cannot parse" in message and where in message, message


def test_a_saved_run_config_is_migrated_or_none():
    from refusal_atlas.config import saved_run_config

    old = {"steering": {"executor": "local"}, "sae": {"train_steps": 5},
           "style": {"llm_model": "m"}}
    cfg = saved_run_config(old)
    assert cfg.executor.name == "local" and cfg.sae.train.steps == 5
    assert cfg.style.hf.model_name_or_path == "m"
    for unreadable in (None, {}, "text", {"bogus": 1}, {"labels": {"judge": "nope"}}):
        assert saved_run_config(unreadable) is None
