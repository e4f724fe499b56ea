"""The config sections of the stages that run before the SAE: model, data, labels, pools,
activations, layer scan, geometry, steering; and style and report. Unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..judges import validate_judge_options
from ..style import HFChatBackend, OpenAICompatBackend


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    name: str = "qwen2.5-coder-0.5b-instruct"
    """Packaged name, Hugging Face id, local folder or .gguf file."""
    dtype: str = "auto"
    device: str = "cpu"
    """auto (CUDA when available, else CPU), cpu, cuda, cuda:N."""
    device_map: str | None = None
    """Passed to ``from_pretrained``: ``auto`` spreads a model larger than one GPU over all
    visible GPUs (needs ``accelerate``); None: the whole model on ``device``."""
    trust_remote_code: bool = False
    chat_template: str | None = None
    system_prompt: str | None = None


class DataSection(_Section):
    suite: str = "demo"
    """demo | paper | paper-raw | coconot-contrast | a file or folder of prompts."""
    data_dir: str | None = None
    splits: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    """At most this many prompts per split and per benign pool (the first ones in source
    order): for quick runs and tests."""


class _JudgeChoice(_Section):
    """A judge by name and its options, checked against the judge's own ``Settings``."""

    judge: str = "substring"
    judge_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the chosen judge (see its ``Settings``: e.g. ``extra_phrases`` for
    substring, ``backend`` / ``batch_size`` for wildguard)."""

    @model_validator(mode="after")
    def _judge_options_fit_the_judge(self):
        # Early: a wrong judge name or option fails here, not after hours of generation.
        validate_judge_options(self.judge, self.judge_options)
        return self


class LabelsSection(_JudgeChoice):
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(32, ge=1)
    stop_at_verdict: bool = True
    """Stop a prompt's response once the judge's verdict cannot change (the substring
    judge: a refusal phrase has appeared), so refusals cost a few tokens instead of the
    budget. Verdicts are the same; stored refusals are cut after the phrase. Judges that
    read the whole response (WildGuard) always get full responses."""
    label_all: bool = True
    """True: label every prompt of the suite. False (lazy, ~1/3 less labelling on the
    demo): label, in rounds, only what the training pools and the controlled test set need
    (`pools.n_hr`, `n_bc`, `test_per_group`); the pools come out the same, the other
    prompts stay unlabelled. Lazy is not the default because the geometry's bootstrap and
    the SAE latent analysis read every labelled HR/BC prompt: with fewer of them their
    stability figures are not comparable to a full run's."""


class PoolsSection(_Section):
    n_hr: int = Field(32, ge=1)
    n_bc: int = Field(32, ge=1)
    seed: int = 123
    test_per_group: int = Field(50, ge=0)
    test_seed: int = 0
    min_pool: int = Field(4, ge=2)
    """A split with fewer HR (or BC) prompts than this gets no direction."""


class ActivationsSection(_Section):
    layer: int | None = Field(None, ge=0)
    """None: the model's preset layer, or the layer scan's choice. The upper bound depends
    on the model and is checked when it loads."""
    position: int = Field(-2, le=-1)
    max_prompt_tokens: int = Field(128, ge=2)
    batch_size: int = Field(32, ge=1)
    cache_dir: str | None = None


class LayerScanSection(_Section):
    enabled: bool = True
    method: Literal["causal", "separation"] = "causal"
    """causal: the layer whose direction, added to benign prompts, most raises the refusal
    log-odds of the first response token; separation: the earliest layer whose held-out
    HR/BC separation reaches `plateau` of the best."""
    max_depth: float = Field(0.8, gt=0, le=1)
    plateau: float = Field(0.9, gt=0, le=1)
    induce_fraction: float = Field(0.5, gt=0, le=1)
    """causal: the earliest layer whose induce score reaches this fraction of the best."""
    stride: int = Field(1, ge=1)


class GeometrySection(_Section):
    n_resamples: int = Field(100, ge=0)
    ks: list[int] = Field(default_factory=lambda: [2, 3, 4, 5])
    seed: int = 0


class SteeringSection(_JudgeChoice):
    alphas: list[float] | Literal["auto"] = "auto"
    """Explicit alphas, or 'auto': the paper's {0,10,30,60,100} rescaled by the ratio of this
    model's mean HR/BC projection gap to Gemma-2-9b-it's (about 119)."""
    auto_reference_gap: float = 119.2
    auto_alphas: list[float] = Field(default_factory=lambda: [0.0, 10.0, 30.0, 60.0, 100.0])
    directions: list[str] | None = None
    layers: list[Annotated[int, Field(ge=0)]] | None = None
    """resid_pre layers to steer at; None: each direction's own layer."""
    ablation: bool = True
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(32, ge=1)
    prompts: str = "test_set"
    """'test_set' (the controlled test set) or a labelled prompt file."""
    extra_directions: list[str] = Field(default_factory=list)
    """Direction files made elsewhere (control-vector .gguf, steering-vectors or plain
    .safetensors) swept beside the run's own; see docs/export.md."""


class ExecutorSection(_Section):
    """Who runs the work units (sweep batches): ``local`` (this process) or ``ray`` (actors
    that each hold one model replica; ``pip install 'refusal-atlas[ray]'``). ``executor:
    ray`` is short for ``executor: {name: ray}``."""

    name: str = "local"
    """local | ray (the keys of ``sweeps.EXECUTORS``)."""
    unit_batches: int | None = Field(None, ge=1)
    """Batches per work unit. A unit's rows decode ``batch_size`` at a time and join the
    running batch as others finish, so larger units keep the batch fuller (the batch
    drains once per unit); a unit is also what an interrupted run redoes and what one
    worker takes. None: 16 with the local executor (fewer drains; see docs/steering.md),
    4 with Ray (more units to spread over actors)."""
    address: str | None = None
    """ray: the cluster to join (``ray://host:10001``, ``auto``); None: ``RAY_ADDRESS``, and
    without it a new local cluster."""
    actors: int | None = Field(None, ge=1)
    """ray: model replicas; None: as many as the cluster's CPUs / GPUs allow."""
    num_cpus: float = Field(1.0, gt=0)
    """ray: CPUs per actor (and its torch threads)."""
    num_gpus: float = Field(0.0, ge=0)
    """ray: GPUs per actor (0.5: two replicas share a GPU; 2, 4, ...: one replica spread
    over that many GPUs with ``model.device_map: auto``)."""
    device: str | None = None
    """ray: the actors' model device; None: cuda with num_gpus, else ``model.device``."""
    max_in_flight: int = Field(2, ge=1)
    """ray: batches queued on one actor at a time."""
    max_actor_failures: int = Field(3, ge=0)
    """ray: actors that may die (each replaced, its batches resent) before a sweep stops."""

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _known_executor(cls, value: str) -> str:
        # the executors import torch; loading a config (and --help) must not
        from ..sweeps.executors import EXECUTORS

        key = value.strip().lower()
        if key not in EXECUTORS:
            raise ValueError(f"unknown executor {value!r}; executors: {', '.join(sorted(EXECUTORS))}")
        return key

    @field_validator("num_gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        # Ray shares a GPU in fractions but gives more than one only whole
        if value > 1 and value != int(value):
            raise ValueError(f"num_gpus above 1 must be a whole number of GPUs, got {value:g}")
        return value

    def batches_per_unit(self) -> int:
        """``unit_batches``, or its default for this executor."""
        if self.unit_batches is not None:
            return self.unit_batches
        return 16 if self.name == "local" else 4

    def options(self) -> dict[str, Any]:
        """The executor's keyword arguments (:func:`~refusal_atlas.sweeps.get_executor`)."""
        if self.name == "local":
            return {}
        return self.model_dump(exclude={"name", "unit_batches"})


class StyleSection(_Section):
    """How steered refusals get their style: the rules, or an LLM on one of the chat
    backends, each with its own settings (``style.hf``, ``style.openai``)."""

    enabled: bool = True
    classifier: Literal["rules", "llm"] = "rules"
    backend: Literal["hf", "openai"] | None = None
    """The LLM classifier's backend; None: ``openai`` when ``style.openai`` is set, else
    ``hf``."""
    hf: HFChatBackend.Settings | None = None
    """A local Hugging Face chat model (``model_name_or_path``, ``device``, ``dtype``...)."""
    openai: OpenAICompatBackend.Settings | None = None
    """An OpenAI-compatible API (``base_url``, ``model``, ``api_key_env``...)."""
    prompt_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_old_keys(cls, data: Any) -> Any:
        return nest_style_keys(data) if isinstance(data, dict) else data


def nest_style_keys(style: dict[str, Any]) -> dict[str, Any]:
    """``style`` with the flat LLM keys of older configs (``llm_model``, ``endpoint``,
    ``api_key_env``) moved into the backend section they configure."""
    if not any(k in style for k in ("llm_model", "endpoint", "api_key_env")):
        return style
    out = {k: v for k, v in style.items() if k not in ("llm_model", "endpoint", "api_key_env")}
    model, endpoint = style.get("llm_model"), style.get("endpoint")
    if endpoint:
        openai = {"base_url": endpoint, **({"model": model} if model else {})}
        if "api_key_env" in style:
            openai["api_key_env"] = style["api_key_env"]
        out["openai"] = {**openai, **(out.get("openai") or {})}
    elif model:
        out["hf"] = {"model_name_or_path": model, **(out.get("hf") or {})}
    return out


class ReportSection(_Section):
    samples_per_condition: int = Field(4, ge=0)
    title: str | None = None
