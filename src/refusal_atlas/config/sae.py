"""The ``sae`` config section, nested like the SAE stages: ``train``, ``corpus``,
``analysis``, ``steer``; and the table that moves the flat keys of older configs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..sae.train.config import SAETrainConfig
from .sections import _Section


class SAECorpusSection(_Section):
    """What an SAE trained here is trained on (``sae.train.max_tokens`` caps the rows)."""

    files: list[str] = Field(default_factory=list)
    """User text files added to the corpus (.txt/.md: one document; .jsonl/.json: rows)."""
    oversample: int = Field(8, ge=0)
    """Repeat each prompt's analysis-position row this many times."""
    holdout: float = Field(0.1, ge=0, lt=1)
    """Share of prompts held out of training, for honest variance-explained numbers."""
    responses: bool = True
    """Teacher-force the labels stage's responses after their prompts (response rows)."""


class SAEAnalysisSection(_Section):
    """Which latents carry refusal in each split (docs/sae.md, "sae_analysis")."""

    top_k: list[int] = Field(default_factory=lambda: [10, 50])
    core_min_splits: int | None = None
    """A latent is in the shared core when it is in the top-K of at least this many splits
    (None: half the splits, rounded up)."""
    core_k: int | None = Field(None, ge=1)
    """The K whose core / tail are 'the' core and tail (steering, summary); None: max(top_k)."""
    examples_k: int = Field(10, ge=1)
    """Latents in a split's top-examples_k (and every core latent) get top-activating prompts."""
    examples_n: int = Field(5, ge=1)


class SAESteerSection(_Section):
    """Steering with sums of SAE decoder rows (docs/sae.md, "sae_steering")."""

    alphas: list[float] | Literal["auto"] = "auto"
    auto_alphas: list[float] = Field(default_factory=lambda: [0.0, 10.0, 30.0, 60.0])
    """'auto' alphas: these (METHOD's SAE alphas) x the directions' auto scale."""
    normalize: bool | None = None
    """Steer along the unit-normalised latent sum (alpha in residual-stream units, as for
    directions). None: yes when alphas is 'auto', no (METHOD's raw sum) otherwise."""
    sets: list[str] = Field(default_factory=lambda: ["core", "split_topk"])
    topk: int = Field(10, ge=1)
    """split_topk / tail sets use each split's top-topk latents."""
    splits: list[str] | None = None
    """Splits whose latent sets are steered; None: max_splits chosen across clusters."""
    max_splits: int | None = Field(3, ge=1)
    """With splits None: this many splits spanning the geometry's two clusters (None: all)."""
    latents: list[int] = Field(default_factory=list)
    """A user latent list, steered as 'sae_user'."""


# The pipeline bounds an SAE's training time by steps; the library's own default (None:
# `epochs` passes over the rows) suits a researcher's tensor of known size.
_PIPELINE_TRAIN_DEFAULTS: dict[str, Any] = {"steps": 3000}


class SAESection(_Section):
    enabled: bool = True
    source: str = "train"
    """'train' (train one on this model) or an SAE spec: params.npz, SAELens folder,
    dictionary_learning folder, gemma-scope hub path, saelens:RELEASE/ID."""
    layer: int | None = Field(None, ge=0)
    """resid_pre layer the SAE reads; None: the direction layer."""
    train: SAETrainConfig = Field(
        default_factory=lambda: SAETrainConfig(**_PIPELINE_TRAIN_DEFAULTS))
    """How an SAE is trained here (source 'train'): what train_sae takes."""
    corpus: SAECorpusSection = Field(default_factory=SAECorpusSection)
    analysis: SAEAnalysisSection = Field(default_factory=SAEAnalysisSection)
    steer: SAESteerSection = Field(default_factory=SAESteerSection)

    @model_validator(mode="before")
    @classmethod
    def _nest_old_keys(cls, data: Any) -> Any:
        return nest_sae_keys(data) if isinstance(data, dict) else data

    @field_validator("train", mode="before")
    @classmethod
    def _pipeline_train_defaults(cls, value: Any) -> Any:
        return {**_PIPELINE_TRAIN_DEFAULTS, **value} if isinstance(value, dict) else value


# Flat `sae` keys from before the section was nested -> (sub-section, key). Run folders'
# config.json and user files written then still load: load_config moves each key to its
# place in every layer (preset, file, options, --set) before merging them.
SAE_RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "architecture": ("train", "architecture"),
    "expansion": ("train", "expansion"),
    "k": ("train", "k"),
    "seed": ("train", "seed"),
    "train_steps": ("train", "steps"),
    "train_batch_size": ("train", "batch_size"),
    "train_max_tokens": ("train", "max_tokens"),
    "corpus_files": ("corpus", "files"),
    "corpus_oversample": ("corpus", "oversample"),
    "corpus_holdout": ("corpus", "holdout"),
    "corpus_responses": ("corpus", "responses"),
    "top_k": ("analysis", "top_k"),
    "core_min_splits": ("analysis", "core_min_splits"),
    "core_k": ("analysis", "core_k"),
    "examples_k": ("analysis", "examples_k"),
    "examples_n": ("analysis", "examples_n"),
    "steer_alphas": ("steer", "alphas"),
    "steer_auto_alphas": ("steer", "auto_alphas"),
    "steer_normalize": ("steer", "normalize"),
    "steer_sets": ("steer", "sets"),
    "steer_topk": ("steer", "topk"),
    "steer_splits": ("steer", "splits"),
    "steer_max_splits": ("steer", "max_splits"),
    "steer_latents": ("steer", "latents"),
}


def nest_sae_keys(sae: dict[str, Any]) -> dict[str, Any]:
    """``sae`` with its old flat keys moved under their sub-sections; a key given both ways
    in one mapping keeps the nested value."""
    if not any(key in SAE_RENAMED_KEYS for key in sae):
        return sae
    out = {key: value for key, value in sae.items() if key not in SAE_RENAMED_KEYS}
    for old, (section, key) in SAE_RENAMED_KEYS.items():
        if old not in sae:
            continue
        sub = out.get(section)
        if sub is None:
            sub = {}
        if isinstance(sub, dict):
            out[section] = {key: sae[old], **sub}
    return out
