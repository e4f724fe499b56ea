"""Run configuration: typed, validated, with presets and command-line overrides.

A config is YAML or TOML with the sections below. Unknown keys and bad values are errors
that name the key. The ``demo`` preset (the default) is sized to finish on a 2-core CPU
with the default model; ``paper`` holds the paper's settings for 9B/8B models on a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import UserError

PRESET_DIR = Path(__file__).resolve().parent / "presets"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    name: str = "qwen2.5-coder-0.5b-instruct"
    """Packaged name, Hugging Face id, local folder or .gguf file."""
    dtype: str = "auto"
    device: str = "cpu"
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


class LabelsSection(_Section):
    judge: str = "substring"
    judge_options: dict[str, Any] = Field(default_factory=dict)
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(32, ge=1)


class PoolsSection(_Section):
    n_hr: int = Field(32, ge=1)
    n_bc: int = Field(32, ge=1)
    seed: int = 123
    test_per_group: int = Field(50, ge=0)
    test_seed: int = 0
    min_pool: int = Field(4, ge=2)
    """A split with fewer HR (or BC) prompts than this gets no direction."""


class ActivationsSection(_Section):
    layer: int | None = None
    """None: the model's preset layer, or the layer scan's choice."""
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


class SteeringSection(_Section):
    alphas: list[float] | Literal["auto"] = "auto"
    """Explicit alphas, or 'auto': the paper's {0,10,30,60,100} rescaled by the ratio of this
    model's mean HR/BC projection gap to Gemma-2-9b-it's (about 119)."""
    auto_reference_gap: float = 119.2
    auto_alphas: list[float] = Field(default_factory=lambda: [0.0, 10.0, 30.0, 60.0, 100.0])
    directions: list[str] | None = None
    layers: list[int] | None = None
    """resid_pre layers to steer at; None: each direction's own layer."""
    ablation: bool = True
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(32, ge=1)
    judge: str = "substring"
    judge_options: dict[str, Any] = Field(default_factory=dict)
    prompts: str = "test_set"
    """'test_set' (the controlled test set) or a labelled prompt file."""
    executor: str = "local"


class SAESection(_Section):
    enabled: bool = True
    source: str = "train"
    """'train' (train one on this model) or an SAE spec: params.npz, SAELens folder,
    dictionary_learning folder, gemma-scope hub path, saelens:RELEASE/ID."""
    layer: int | None = None
    """resid_pre layer the SAE reads; None: the direction layer."""
    expansion: int = Field(8, ge=1)
    k: int = Field(32, ge=1)
    train_steps: int = Field(3000, ge=1)
    train_batch_size: int = Field(1024, ge=1)
    train_max_tokens: int = Field(200_000, ge=1000)
    corpus_files: list[str] = Field(default_factory=list)
    top_k: list[int] = Field(default_factory=lambda: [10, 50])
    core_min_splits: int | None = None
    """A latent is in the shared core when it is in the top-K of at least this many splits
    (None: half the splits, rounded up)."""
    steer_alphas: list[float] | Literal["auto"] = "auto"
    steer_sets: list[str] = Field(default_factory=lambda: ["core", "split_topk"])
    seed: int = 0
    # --- added with the SAE stages (docs/sae.md)
    architecture: Literal["topk", "jumprelu"] = "topk"
    """Architecture of an SAE trained here."""
    corpus_oversample: int = Field(8, ge=0)
    """Training corpus: repeat each prompt's analysis-position row this many times."""
    corpus_holdout: float = Field(0.1, ge=0, lt=1)
    """Share of prompts held out of training, for honest variance-explained numbers."""
    corpus_responses: bool = True
    """Teacher-force the labels stage's responses after their prompts (response rows)."""
    core_k: int | None = Field(None, ge=1)
    """The K whose core / tail are 'the' core and tail (steering, summary); None: max(top_k)."""
    examples_k: int = Field(10, ge=1)
    """Latents in a split's top-examples_k (and every core latent) get top-activating prompts."""
    examples_n: int = Field(5, ge=1)
    steer_auto_alphas: list[float] = Field(default_factory=lambda: [0.0, 10.0, 30.0, 60.0])
    """'auto' steer_alphas: these (METHOD's SAE alphas) x the directions' auto scale."""
    steer_normalize: bool | None = None
    """Steer along the unit-normalised latent sum (alpha in residual-stream units, as for
    directions). None: yes when steer_alphas is 'auto', no (METHOD's raw sum) otherwise."""
    steer_topk: int = Field(10, ge=1)
    """split_topk / tail sets use each split's top-steer_topk latents."""
    steer_splits: list[str] | None = None
    """Splits whose latent sets are steered; None: steer_max_splits chosen across clusters."""
    steer_max_splits: int | None = Field(3, ge=1)
    """With steer_splits None: this many splits spanning the geometry's two clusters (None: all)."""
    steer_latents: list[int] = Field(default_factory=list)
    """A user latent list, steered as 'sae_user'."""


class StyleSection(_Section):
    enabled: bool = True
    classifier: Literal["rules", "llm"] = "rules"
    llm_model: str | None = None
    endpoint: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    prompt_file: str | None = None


class ReportSection(_Section):
    samples_per_condition: int = Field(4, ge=0)
    title: str | None = None


class RunConfig(_Section):
    preset: str = "demo"
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    labels: LabelsSection = Field(default_factory=LabelsSection)
    pools: PoolsSection = Field(default_factory=PoolsSection)
    activations: ActivationsSection = Field(default_factory=ActivationsSection)
    layer_scan: LayerScanSection = Field(default_factory=LayerScanSection)
    geometry: GeometrySection = Field(default_factory=GeometrySection)
    steering: SteeringSection = Field(default_factory=SteeringSection)
    sae: SAESection = Field(default_factory=SAESection)
    style: StyleSection = Field(default_factory=StyleSection)
    report: ReportSection = Field(default_factory=ReportSection)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in list_presets():
            raise ValueError(f"unknown preset {value!r}; presets: {', '.join(list_presets())}")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------
# Loading


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - parser errors differ per format
        raise UserError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    return data


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], origin: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise UserError(f"invalid config ({origin}): " + "; ".join(problems)) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with the value parsed as YAML (so 1, true, [1, 2] work)."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise UserError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return path, value


def load_config(path: str | Path | None = None, *, preset: str | None = None,
                overrides: dict[str, Any] | None = None,
                set_values: list[str] | None = None) -> RunConfig:
    """preset (file's ``preset`` key, else ``demo``) <- file <- overrides <- ``--set`` values."""
    file_data = _read_mapping(Path(path)) if path else {}
    preset_name = preset or file_data.get("preset") or "demo"
    if preset_name not in list_presets():
        raise UserError(f"unknown preset {preset_name!r}; presets: {', '.join(list_presets())}")
    data = _read_mapping(PRESET_DIR / f"{preset_name}.yaml")
    data = _merge(data, file_data)
    data["preset"] = preset_name
    if overrides:
        data = _merge(data, overrides)
    for item in set_values or []:
        keys, value = parse_override(item)
        nested: dict[str, Any] = {}
        cursor = nested
        for k in keys[:-1]:
            cursor = cursor.setdefault(k, {})
        cursor[keys[-1]] = value
        data = _merge(data, nested)
    origin = str(path) if path else f"preset {preset_name}"
    return _validate(data, origin)
