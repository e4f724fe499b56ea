"""The settings of :func:`~refusal_atlas.sae.train.train_sae`, also the run config's ``sae.train``.

One pydantic model serves both: a researcher passes it to ``train_sae``, the pipeline reads
it from the ``sae.train`` section of a run config. It imports no torch, so loading a config
stays cheap.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TrainArchitecture = Literal["topk", "jumprelu"]

# Pipeline-only fields: train_sae trains on the rows it is given, so they are not part of
# the record of a training run (to_dict), which stays what it was before they existed.
_NOT_RECORDED = frozenset({"max_tokens"})


class SAETrainConfig(BaseModel):
    """Settings of :func:`~refusal_atlas.sae.train.train_sae` (all have working defaults).

    ``steps`` wins over ``epochs`` when both are given. ``lr=None`` picks
    ``4e-4 * sqrt(2**14 / d_sae)`` (the 1/sqrt(d_sae) scaling of Gao et al., at twice
    dictionary_learning's constant because runs here are short). In a run config this is
    the ``sae.train`` section, whose ``steps`` defaults to 3000 (a bounded run time).

    Example:
        >>> config = SAETrainConfig(expansion=4, k=16, steps=2000)
        >>> sae, report = train_sae(acts, config, hook_layer=12, model_name="qwen")  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    architecture: TrainArchitecture = "topk"
    """Architecture of the trained SAE."""
    expansion: int = Field(8, ge=1)
    """Latents per residual dimension (d_sae = expansion x d_in)."""
    d_sae: int | None = None
    """Overrides expansion."""
    k: int = Field(32, ge=1)
    """Active latents per row (TopK)."""
    lr: float | None = None
    batch_size: int = Field(1024, ge=1)
    steps: int | None = Field(None, ge=1)
    epochs: float = 3.0
    max_tokens: int = Field(200_000, ge=1000)
    """The pipeline collects at most this many activation rows (token positions) to train
    on; train_sae itself trains on the rows it is given."""
    warmup: float = 0.05
    """Fraction of steps."""
    decay_start: float = 0.8
    """Fraction of steps after which the lr decays linearly to 0."""
    seed: int = 0
    b_dec_init: Literal["geometric_median", "mean", "zeros"] = "geometric_median"
    normalize_inputs: bool = True
    exclude_norm_outliers: float | None = 10.0
    """x median norm; None keeps every row."""
    # TopK: AuxK dead-latent loss
    aux_coeff: float = 1 / 32
    aux_k: int | None = None
    """None: d_in // 2."""
    dead_after_tokens: int = 50_000
    # JumpReLU
    l0_coeff: float = 2.0
    l0_warmup: float = 0.1
    """Fraction of steps over which l0_coeff ramps up from 0."""
    jumprelu_bandwidth: float = 0.05
    jumprelu_init_l0: float = 128.0
    """Initial thresholds: per-latent quantiles giving this L0."""
    jumprelu_init_threshold: float | None = None
    """A constant initial threshold instead."""
    # optimisation details
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    device: str = "cpu"
    num_threads: int | None = None
    """torch CPU threads while training (None: unchanged)."""
    log_every: int = 25
    plateau: float | None = Field(None, gt=0)
    """Stop early once the fraction of variance explained gains less than this over the
    last ``plateau_window`` logged intervals: the learning rate then decays over the same
    share of the steps done as the full schedule's decay, and training ends there (None:
    train every step). Time saved without a worse SAE, where the run had flattened."""
    plateau_window: int = Field(8, ge=1)
    """Logged intervals (``log_every`` steps each) the plateau test looks back over."""
    eval_max_rows: int = 16_384
    """Rows of the training set used for the final train metrics."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists), so it survives a JSON round trip. The
        plateau settings are recorded only when a plateau stop is on, so the record of a
        full-length run is what it was before they existed."""
        unset = {"plateau", "plateau_window"} if self.plateau is None else set()
        return self.model_dump(mode="json", exclude=set(_NOT_RECORDED) | unset)


__all__ = ["SAETrainConfig", "TrainArchitecture"]
