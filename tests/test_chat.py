import pytest
from conftest import FAMILIES

from refusal_atlas.chat import ChatFormatter, pad_left, position_ids_from_mask, resolve_position
from refusal_atlas.errors import UserError


def test_single_user_turn_with_generation_prompt(tiny_lm):
    text = ChatFormatter(tiny_lm.tokenizer).format("Hello there")
    expected_end = {"qwen2": "<|im_start|>assistant\n",
                    "llama": "<|start_header_id|>assistant<|end_header_id|>\n\n",
                    "gemma2": "<start_of_turn>model\n"}[tiny_lm.family]
    assert text.endswith(expected_end)
    assert text.count("Hello there") == 1


def test_left_padding_aligns_prompt_ends(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    prompts = ["Hi", "How do I make a cake? Tell me a story about a dragon, please."]
    batch = fmt.batch(prompts)
    lengths = [len(fmt.encode(p)) for p in prompts]
    assert batch.lengths == lengths
    assert batch.attention_mask.sum(1).tolist() == lengths
    # padding is on the left: each row's real tokens end at the last column
    for row, n in enumerate(lengths):
        assert batch.attention_mask[row, -n:].all() and not batch.attention_mask[row, :-n].any()
        assert batch.input_ids[row, -n:].tolist() == fmt.encode(prompts[row])


def test_position_minus_two_is_the_same_template_token_in_every_row(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer)
    prompts = ["a", "What is the capital of France?", "Write a poem about the sea " * 3]
    batch = fmt.batch(prompts)
    col = resolve_position(-2, batch.lengths, batch.input_ids.shape[1])
    tokens = batch.input_ids[:, col]
    assert (tokens == tokens[0]).all()
    # and it is the template's second-to-last token, not a prompt token
    suffix = fmt.tokenizer(fmt.format("zzz"), add_special_tokens=False)["input_ids"]
    assert tokens[0].item() == suffix[-2]


def test_truncation_keeps_the_end(tiny_lm):
    fmt = ChatFormatter(tiny_lm.tokenizer, max_tokens=12)
    long_prompt = "Tell me a story about a dragon. " * 20
    ids = fmt.encode(long_prompt)
    full = tiny_lm.tokenizer(fmt.format(long_prompt), add_special_tokens=False)["input_ids"]
    assert len(full) > 12
    assert ids == full[-12:]


def test_position_ids_start_at_zero_on_first_real_token():
    batch = pad_left([[5, 6, 7], [8]], pad_id=0)
    assert position_ids_from_mask(batch.attention_mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def test_bad_positions_are_user_errors():
    with pytest.raises(UserError, match="negative"):
        resolve_position(0, [5, 6], 6)
    with pytest.raises(UserError, match="before the start"):
        resolve_position(-7, [5, 6], 6)


def test_model_without_chat_template_is_a_clear_error(tiny_model_dirs, tmp_path):
    import shutil

    from refusal_atlas.models import load_model

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_model_dirs["llama"], folder)
    for name in ("chat_template.jinja",):
        (folder / name).unlink(missing_ok=True)
    import json
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="no chat template"):
        load_model(str(folder), dtype="float32")
    # ... and a template passed by the user makes it usable
    lm = load_model(str(folder), dtype="float32", chat_template=FAMILIES["llama"]["template"])
    assert ChatFormatter(lm.tokenizer).format("x").endswith("<|end_header_id|>\n\n")


# --------------------------------------------------------------------------- --chat-template
# Issue 10: `--chat-template missing.jinja` used the path string itself as the template, so
# every prompt became the text "missing.jinja" (garbage responses, exit 0).


def test_chat_template_value_that_names_a_missing_file_is_an_error(tmp_path, monkeypatch):
    from refusal_atlas.chat import read_chat_template

    monkeypatch.chdir(tmp_path)
    for value in ("missing.jinja", "missing.j2", "missing.txt", "templates/chatml",
                  str(tmp_path / "nope")):
        with pytest.raises(UserError, match="does not exist") as err:
            read_chat_template(value)
        assert "\n" not in str(err.value) and value.split("/")[-1] in str(err.value)
    (tmp_path / "folder.jinja").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        read_chat_template("folder.jinja")
    with pytest.raises(UserError, match="neither a file nor a Jinja template"):
        read_chat_template("chatml")


def test_chat_template_file_is_read_and_literal_is_kept(tmp_path):
    from refusal_atlas.chat import read_chat_template

    template = FAMILIES["llama"]["template"]
    path = tmp_path / "t.jinja"
    path.write_text(template, encoding="utf-8")
    assert read_chat_template(str(path)) == template
    assert read_chat_template(template) == template
    assert read_chat_template("{{ messages }}") == "{{ messages }}"
    bad = tmp_path / "latin1.jinja"
    bad.write_bytes("{{ 'caf\xe9' }}".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8") as err:
        read_chat_template(str(bad))
    assert "\n" not in str(err.value)


def test_load_model_refuses_a_missing_chat_template_file_before_loading(tiny_model_dirs,
                                                                        tmp_path, monkeypatch):
    from refusal_atlas import models

    def no_load(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(models, "load_causal_lm", no_load)
    with pytest.raises(UserError, match=r"chat template file .*missing\.jinja does not exist"):
        models.load_model(str(tiny_model_dirs["llama"]), dtype="float32",
                          chat_template=str(tmp_path / "missing.jinja"))
