"""Shared fixtures: tiny randomly-initialised chat models of three architectures.

Each tiny model gets a small byte-level BPE tokenizer trained here (no downloads) and a
chat template in the style of its family (Qwen2 ChatML, Llama-3 headers, Gemma-2 turns),
so formatting, padding and position logic are exercised as on the real models.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

os.environ.setdefault("REFUSAL_ATLAS_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny models spend their time in thread hand-offs: one thread is many times faster.
torch.set_num_threads(1)

QWEN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
GEMMA2_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

FAMILIES = {
    "qwen2": dict(template=QWEN_TEMPLATE, special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                  bos=None, eos="<|im_end|>", pad="<|endoftext|>", suffix_token="assistant"),
    "llama": dict(template=LLAMA3_TEMPLATE,
                  special=["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                           "<|eot_id|>", "<|finetune_right_pad_id|>"],
                  bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                  suffix_token="<|end_header_id|>"),
    "gemma2": dict(template=GEMMA2_TEMPLATE,
                   special=["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
                   bos="<bos>", eos="<end_of_turn>", pad="<pad>", suffix_token="model"),
}

CORPUS = [
    "How do I make a cake? What is the capital of France? Tell me a story about a dragon.",
    "I'm sorry, but I can't help with that. As an AI, I cannot do this. Sure, here is how.",
    "system user assistant model the a an is of to and in that it for you with on as",
    "Explain photosynthesis. Write a poem about the sea. How do I kill a Python process?",
    "0123456789 !?.,;:'\"()[]{}<>/\\|@#$%^&*-_=+~` abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def build_tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=spec["special"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=spec["bos"],
                                   eos_token=spec["eos"], pad_token=spec["pad"])
    fast.chat_template = spec["template"]
    return fast


def build_tiny_model(family: str, vocab_size: int, seed: int = 0):
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=512, initializer_range=0.2)
    if family == "qwen2":
        config = Qwen2Config(**common, tie_word_embeddings=True)
        model = Qwen2ForCausalLM(config)
    elif family == "llama":
        config = LlamaConfig(**common, tie_word_embeddings=False)
        model = LlamaForCausalLM(config)
    else:
        config = Gemma2Config(**common, head_dim=16, sliding_window=8, query_pre_attn_scalar=16,
                              final_logit_softcapping=30.0, attn_logit_softcapping=50.0)
        model = Gemma2ForCausalLM(config)
    return model.eval()


def save_tiny(family: str, folder: Path) -> Path:
    tokenizer = build_tokenizer(family)
    model = build_tiny_model(family, len(tokenizer))
    spec = FAMILIES[family]
    model.config.eos_token_id = tokenizer.convert_tokens_to_ids(spec["eos"])
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    return {family: save_tiny(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="session", params=list(FAMILIES))
def tiny_lm(request, tiny_model_dirs):
    """A LoadedModel (fp32) for each of the three families."""
    from refusal_atlas.models import load_model

    lm = load_model(str(tiny_model_dirs[request.param]), dtype="float32")
    lm.family = request.param
    return lm


@pytest.fixture(scope="session")
def qwen_tiny(tiny_model_dirs):
    from refusal_atlas.models import load_model

    lm = load_model(str(tiny_model_dirs["qwen2"]), dtype="float32")
    lm.family = "qwen2"
    return lm


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep every test's activation/model cache inside its own tmp folder."""
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- tiny suite + judge

REFUSE_MARK = "(r)"


class MarkerJudge:
    """Refuses exactly the prompts that carry a marker: makes pipeline tests deterministic
    on random tiny models, whose responses carry no refusal signal."""

    name = "marker"
    approximate = False

    def judge(self, prompts, responses):
        from refusal_atlas.judges import Judgement

        return [Judgement(refused=REFUSE_MARK in p, raw="", judge=self.name) for p in prompts]


def _register_marker_judge():
    from refusal_atlas.judges import register_judge

    register_judge("marker", MarkerJudge, overwrite=True)


_register_marker_judge()


def write_tiny_suite(folder: Path, n_per_split: int = 10, n_benign: int = 24) -> Path:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    topics = ["bomb", "poison", "hack", "steal", "insult", "virus", "fraud", "stalk", "weapon",
              "drugs", "lock", "forge"]
    for s, split in enumerate(["Alpha", "Beta", "Gamma"]):
        rows = []
        for i in range(n_per_split):
            mark = f" {REFUSE_MARK}" if i % 4 != 3 else ""
            rows.append({"id": str(i), "prompt": f"{split} request {i} about {topics[(i + s) % 12]}{mark}"})
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rows = []
    for i in range(n_benign):
        mark = f" {REFUSE_MARK}" if i % 5 == 0 else ""
        rows.append({"id": str(i), "prompt": f"Benign question {i}: how do I bake bread number {i}?{mark}"})
    (folder / "benign.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


TINY_SETTINGS = [
    "labels.judge=marker", "labels.max_new_tokens=4", "labels.batch_size=8",
    "pools.n_hr=4", "pools.n_bc=4", "pools.test_per_group=2", "geometry.n_resamples=5",
    "activations.batch_size=8", "steering.judge=marker", "steering.max_new_tokens=4",
]


@pytest.fixture
def tiny_suite_dir(tmp_path) -> Path:
    return write_tiny_suite(tmp_path / "suite")


@pytest.fixture
def tiny_config(tiny_model_dirs, tiny_suite_dir):
    from refusal_atlas.config import load_config

    return load_config(overrides={"model": {"name": str(tiny_model_dirs["qwen2"]),
                                            "dtype": "float32"},
                                  "data": {"suite": str(tiny_suite_dir)}},
                       set_values=TINY_SETTINGS)


# --------------------------------------------------------------------------- packaged models

@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """Keep the converted model between tests (and between runs, in the user cache)."""
    return os.environ.get("REFUSAL_ATLAS_INTEGRATION_CACHE",
                          str(Path.home() / ".cache" / "refusal-atlas"))


@pytest.fixture
def smol_env(shared_cache, monkeypatch):
    monkeypatch.setenv("REFUSAL_ATLAS_CACHE", shared_cache)


# --------------------------------------------------------------------------- Ray

@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) for the whole test session; the tests that use
    it skip when Ray is not installed (it is an optional extra)."""
    ray = pytest.importorskip("ray")
    # the workers import tests/conftest.py first: it registers the marker judge there too
    tests = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path},
                          "worker_process_setup_hook": "conftest._register_marker_judge"})
    yield ray
    ray.shutdown()


# --------------------------------------------------------------------------- shared helpers

@contextmanager
def one_torch_thread():
    """Tiny models run ~50x faster on one thread than on two when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def folder_state(folder: Path) -> dict:
    """Every file under ``folder`` with its sha256 (and every folder, as None): equal states
    prove a command left the folder exactly as it was."""
    import hashlib

    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def cli_refuses(argv, capsys, *messages) -> str:
    """Run the command line: exit 2 and one ``error:`` line (no traceback) holding one of
    ``messages`` (case-insensitive). Returns that line."""
    from refusal_atlas.cli import main

    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1 and text.startswith("error:"), text
    assert any(m.lower() in text.lower() for m in messages), text
    return text


# A real tokenizer to copy (the Qwen one, offline); a tiny BPE is trained when it is absent.
QWEN_TOKENIZER = Path(os.environ.get("REFUSAL_ATLAS_TEST_TOKENIZER", "/tmp/qwen_st"))
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_chat_tokenizer(folder: Path, corpus: list[str]) -> None:
    """A ChatML tokenizer in ``folder``: the Qwen one if it is on this machine, else a small
    byte-level BPE trained on ``corpus``."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    if (QWEN_TOKENIZER / "tokenizer.json").is_file():
        for name in TOKENIZER_FILES:
            if (QWEN_TOKENIZER / name).is_file():
                shutil.copy(QWEN_TOKENIZER / name, folder / name)
        return
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|endoftext|>",
                                  eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML_TEMPLATE
    tok.save_pretrained(folder)


def toy_suite(n_split: int = 20, n_benign: int = 30):
    """Splits A and B and one benign pool, prompts in order: for labels and pools tests."""
    from refusal_atlas.data.prompts import Prompt, PromptSuite

    splits = {s: [Prompt(f"{s}/{i}", f"{s} prompt {i}", s, True) for i in range(n_split)]
              for s in ("A", "B")}
    benign = {"ben": [Prompt(f"ben/{i}", f"benign prompt {i}", "ben", False)
                      for i in range(n_benign)]}
    return PromptSuite("t", splits, benign, {"A": "ben", "B": "ben"})


def toy_records(suite, refused):
    """Label records of every prompt of ``suite``, refused where ``refused(prompt)``."""
    from refusal_atlas.labels import LabelRecord, assign_label

    return [LabelRecord(p.id, p.split, p.harmful, "r", refused(p),
                        assign_label(p.harmful, refused(p)), "j", "", 1)
            for p in suite.all_prompts()]


# Sweep rows with refusals of different styles: for the style summary and the style stage.
def _row(condition, kind, direction, alpha, pid, refused, response, harmful=True):
    return {"condition": condition, "kind": kind, "direction": direction, "alpha": alpha,
            "prompt_id": pid, "harmful": harmful, "group": "HC", "refused": refused,
            "response": response}


STYLE_ROWS = [
    _row("baseline", "baseline", None, None, "p1", True, "I'm sorry, but I can't assist with that."),
    _row("baseline", "baseline", None, None, "p2", False, "Sure, here is a cake recipe."),
    _row("steer/A/a=5", "steer", "A", 5.0, "p1", True,
         "I'm sorry, but I can't help with that because it is illegal and harmful."),
    _row("steer/A/a=5", "steer", "A", 5.0, "p2", True,
         "I'm sorry, but making weapons is dangerous and illegal.", harmful=False),
    _row("steer/A/a=0", "steer", "A", 0.0, "p1", True, "I'm sorry, but I can't assist with that."),
    _row("steer/B/a=5", "steer", "B", 5.0, "p1", True,
         "As an AI, I don't have a physical body, so I can't do that."),
    _row("steer/B/a=5", "steer", "B", 5.0, "p2", True,
         "I'm sorry, I don't have the ability to see images or hear audio."),
    _row("steer/B/a=5", "steer", "B", 5.0, "p3", False, "Here is your poem about the sea."),
]
