"""``--dry-run``: what a run will do, in work units, and roughly how long it will take.

Estimates are deliberately simple: every stage's work is counted in token forwards
(prompt tokens through the model plus generated tokens) and divided by a throughput
calibrated on this project's reference machine (2 CPU cores, bf16, the 0.5B default
model), scaled by the model's parameter count. They are rough; finished stages show
the time they really took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import RunConfig
from ..data import limit_suite, load_suite
from ..errors import UserError
from ..hub import hub_unreachable_reason, quiet_hub

# Measured with the default model (0.49B parameters, bf16, batch 32-64) on 2 CPU cores.
REFERENCE_PARAMS = 0.49e9
REFERENCE_PREFILL_TOKENS_PER_S = 1500.0
REFERENCE_DECODE_TOKENS_PER_S = 150.0
PROMPT_TOKENS = 50  # typical chat-formatted demo prompt
SAE_SECONDS_PER_STEP = 0.2

KNOWN_PARAMS = {"qwen2.5-coder-0.5b-instruct": 0.49e9, "smollm2-135m-instruct": 0.135e9,
                "google/gemma-2-9b-it": 9.2e9, "meta-llama/Meta-Llama-3-8B-Instruct": 8.0e9}


@dataclass
class StageEstimate:
    units: int
    unit: str
    seconds: float | None


def model_params(cfg: RunConfig) -> float | None:
    if cfg.model.name in KNOWN_PARAMS:
        return KNOWN_PARAMS[cfg.model.name]
    try:
        from transformers import AutoConfig  # heavy; only for a model we know nothing of

        with quiet_hub():
            conf = AutoConfig.from_pretrained(
                cfg.model.name, local_files_only=hub_unreachable_reason() is not None)
        d, n = conf.hidden_size, conf.num_hidden_layers
        inter = getattr(conf, "intermediate_size", 4 * d)
        return float(n * (4 * d * d + 3 * d * inter) + conf.vocab_size * d)
    except Exception:  # noqa: BLE001 - no config reachable: no estimate
        return None


def _seconds(cfg: RunConfig, prefill: float, decode: float, params: float | None) -> float | None:
    if params is None or cfg.model.device != "cpu":
        return None
    scale = params / REFERENCE_PARAMS
    return scale * (prefill / REFERENCE_PREFILL_TOKENS_PER_S + decode / REFERENCE_DECODE_TOKENS_PER_S)


def estimate_stages(cfg: RunConfig, names: list[str]) -> dict[str, StageEstimate]:
    try:
        suite = load_suite(cfg.data.suite, data_dir=cfg.data.data_dir, splits=cfg.data.splits)
    except UserError:
        return {}
    if cfg.data.limit:
        suite = limit_suite(suite, cfg.data.limit)
    params = model_params(cfg)
    n_prompts = len(suite.all_prompts())
    n_splits = len(suite.splits)
    n_test = 4 * cfg.pools.test_per_group
    alphas = (len(cfg.steering.auto_alphas) if cfg.steering.alphas == "auto"
              else len(cfg.steering.alphas))
    nonzero = max(alphas - 1, 1)
    # decoding stops early for refusals; half the budget is typical on the demo data
    mean_new = lambda n: 0.6 * n  # noqa: E731
    out: dict[str, StageEstimate] = {}
    for name in names:
        if name == "labels":
            out[name] = StageEstimate(n_prompts, "prompts", _seconds(
                cfg, n_prompts * PROMPT_TOKENS, n_prompts * mean_new(cfg.labels.max_new_tokens),
                params))
        elif name == "layer_scan":
            n = 2 * cfg.pools.n_hr * n_splits
            out[name] = StageEstimate(n, "prompts", _seconds(cfg, n * PROMPT_TOKENS, 0, params))
        elif name == "activations":
            out[name] = StageEstimate(n_prompts, "prompts", _seconds(
                cfg, 0.7 * n_prompts * PROMPT_TOKENS, 0, params))
        elif name == "steering":
            rows = (n_splits * nonzero + 1) * n_test
            out[name] = StageEstimate(rows, "rows", _seconds(
                cfg, rows * PROMPT_TOKENS, rows * mean_new(cfg.steering.max_new_tokens), params))
        elif name == "ablation":
            rows = (n_splits + 1) * n_test
            out[name] = StageEstimate(rows, "rows", _seconds(
                cfg, rows * PROMPT_TOKENS, rows * mean_new(cfg.steering.max_new_tokens), params))
        elif name == "sae":
            steps = (cfg.sae.train.steps or 0) if cfg.sae.source == "train" else 0
            corpus = _seconds(cfg, 3 * n_prompts * PROMPT_TOKENS, 0, params) if steps else 0.0
            out[name] = StageEstimate(steps, "training steps",
                                      None if corpus is None else corpus + steps *
                                      SAE_SECONDS_PER_STEP * cfg.sae.train.expansion / 8)
        elif name == "sae_steering":
            sets = 4
            rows = (sets * max(len(cfg.steering.auto_alphas) - 2, 1) + 1) * n_test
            out[name] = StageEstimate(rows, "rows", _seconds(
                cfg, rows * PROMPT_TOKENS, rows * mean_new(cfg.steering.max_new_tokens), params))
        elif name == "style":
            out[name] = StageEstimate(0, "responses", 2.0 if cfg.style.classifier == "rules" else None)
        else:
            out[name] = StageEstimate(0, "", 1.0)
    return out


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.1f} min"
