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

# Measured with the default model (0.49B parameters, bf16, batch 64-128) on 2 CPU cores
# (AMD EPYC, AVX512-BF16): the demo's sweeps decode at 175-210 tokens/s.
REFERENCE_PARAMS = 0.49e9
REFERENCE_PREFILL_TOKENS_PER_S = 1500.0
REFERENCE_DECODE_TOKENS_PER_S = 190.0
PROMPT_TOKENS = 50  # typical chat-formatted demo prompt
# A sweep's rows of one prompt share the blocks before the steered layer (the trunk), a
# layer scan pass starts at its layer: about half the prompt tokens' work.
SHARED_PREFILL = 0.5
SAE_SECONDS_PER_STEP = 0.12  # at 8x width, batch 1024 (sparse backward; 0.06-0.07 s at 4x)
# Lazy labelling labels what the pools and the test set need: roughly (n_hr + margin) / the
# HR rate prompts per split and (n_bc + margin) / the BC rate per benign pool. The rates are
# guesses (the demo's model refuses about half its harmful prompts and complies with 60-80%
# of the benign ones; lazy labelling of the demo labels 930 of 1477 prompts, this says 900).
LAZY_HR_RATE = 0.5
LAZY_BC_RATE = 0.6

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


def expected_labelled(cfg: RunConfig, suite) -> int:
    """How many prompts the labels stage is expected to label: all of them with
    ``labels.label_all``, else a rough count of what lazy labelling needs (rates above)."""
    n_prompts = len(suite.all_prompts())
    if cfg.labels.label_all:
        return n_prompts
    p = cfg.pools
    hr_margin = math.ceil(p.test_per_group / max(len(suite.splits), 1)) + 1
    b_margin = math.ceil(p.test_per_group / max(len(suite.benign), 1)) + 1
    n = sum(min(len(ps), math.ceil((p.n_hr + hr_margin) / LAZY_HR_RATE))
            for ps in suite.splits.values())
    n += sum(min(len(ps), math.ceil((p.n_bc + b_margin) / LAZY_BC_RATE))
             for ps in suite.benign.values())
    return min(n, n_prompts)


def estimate_stages(cfg: RunConfig, names: list[str]) -> dict[str, StageEstimate]:
    try:
        suite = load_suite(cfg.data.suite, data_dir=cfg.data.data_dir, splits=cfg.data.splits)
    except UserError:
        return {}
    if cfg.data.limit:
        suite = limit_suite(suite, cfg.data.limit)
    params = model_params(cfg)
    n_prompts = len(suite.all_prompts())
    n_labelled = expected_labelled(cfg, suite)
    n_splits = len(suite.splits)
    n_test = 4 * cfg.pools.test_per_group
    alphas = (len(cfg.steering.auto_alphas) if cfg.steering.alphas == "auto"
              else len(cfg.steering.alphas))
    nonzero = max(alphas - 1, 1)
    # decoding stops early for refusals; half the budget is typical on the demo data
    mean_new = lambda n: 0.6 * n  # noqa: E731
    out: dict[str, StageEstimate] = {}
    # the other sweeps take steering's baseline rows when steering runs first
    shared_base = n_test if "steering" in names else 0

    def sweep(rows: int, trunk: bool) -> StageEstimate:
        prefill = rows * PROMPT_TOKENS * (SHARED_PREFILL if trunk else 1.0)
        return StageEstimate(rows, "rows", _seconds(
            cfg, prefill, rows * mean_new(cfg.steering.max_new_tokens), params))

    for name in names:
        if name == "labels":
            out[name] = StageEstimate(n_labelled, "prompts", _seconds(
                cfg, n_labelled * PROMPT_TOKENS,
                n_labelled * mean_new(cfg.labels.max_new_tokens), params))
        elif name == "layer_scan":
            n = 2 * cfg.pools.n_hr * n_splits
            out[name] = StageEstimate(n, "prompts", _seconds(
                cfg, SHARED_PREFILL * n * PROMPT_TOKENS, 0, params))
        elif name == "activations":  # every labelled prompt; read during labelling's prefill
            out[name] = StageEstimate(n_labelled, "prompts", 1.0 if "labels" in names else
                                      _seconds(cfg, 0.7 * n_labelled * PROMPT_TOKENS, 0, params))
        elif name == "steering":
            out[name] = sweep((n_splits * nonzero + 1) * n_test, trunk=True)
        elif name == "ablation":
            out[name] = sweep((n_splits + 1) * n_test - shared_base, trunk=False)
        elif name == "sae":
            steps = (cfg.sae.train.steps or 0) if cfg.sae.source == "train" else 0
            # every prompt once, to the SAE's layer, the chat template's prefix shared
            corpus = _seconds(cfg, 0.75 * n_prompts * PROMPT_TOKENS, 0, params) if steps else 0.0
            out[name] = StageEstimate(steps, "training steps",
                                      None if corpus is None else corpus + steps *
                                      SAE_SECONDS_PER_STEP * cfg.sae.train.expansion / 8)
        elif name == "sae_steering":
            st = cfg.sae.steer
            sets = 1 + min(st.max_splits or n_splits, n_splits)  # the core, then per split
            out[name] = sweep((sets * _nonzero_alphas(st) + 1) * n_test - shared_base,
                              trunk=True)
        elif name == "style":
            out[name] = StageEstimate(0, "responses", 2.0 if cfg.style.classifier == "rules" else None)
        elif name in BEYOND_SWEEPS:
            out[name] = sweep(BEYOND_SWEEPS[name](cfg, n_splits) * n_test - shared_base,
                              trunk=name != "subspace")
        else:
            out[name] = StageEstimate(0, "", 1.0)
    return out


def _nonzero_alphas(section) -> int:
    """Non-zero alphas of a sweep section (``alphas``, or ``auto_alphas`` less the zero)."""
    if section.alphas == "auto":
        return max(len(section.auto_alphas) - 1, 1)
    return max(len([a for a in section.alphas if a]), 1)


def _style_rate_conditions(section, n_splits: int) -> int:
    """Baseline, then per non-zero alpha: the shared axis once and d_c, r_c per split."""
    splits = min(section.max_splits or n_splits, n_splits)
    nonzero = _nonzero_alphas(section)
    return 1 + nonzero * (2 * splits + 1)


def _tail_conditions(section, n_splits: int) -> int:
    """Baseline, per split: the tail latents at each non-zero alpha and the tail removed."""
    splits = min(section.max_splits or n_splits, n_splits)
    nonzero = _nonzero_alphas(section)
    return 1 + splits * (nonzero + 1)


BEYOND_SWEEPS = {
    "style_vs_rate": lambda c, n: _style_rate_conditions(c.beyond.style_vs_rate, n),
    "tail_latents": lambda c, n: _tail_conditions(c.beyond.tail_latents, n),
    "subspace": lambda c, n: 1 + min(c.beyond.subspace.max_k, n) + 1,
}
"""The beyond-the-paper stages that generate: conditions of their sweep over the test set."""


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.1f} min"
