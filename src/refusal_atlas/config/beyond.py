"""The ``beyond`` section: experiments past the paper's method (issue 14), one subsection
per stage. Off by default; the ``beyond`` preset turns them on with a larger test set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .sections import _Section


class _StyleRateSettings(_Section):
    """What a style-vs-rate experiment steers with and where its verdict is taken."""
    enabled: bool = True
    alphas: list[float] | Literal["auto"] = "auto"
    """Explicit alphas, or 'auto': ``auto_alphas`` x the steering stage's scale (the mean
    projection gap / ``steering.auto_reference_gap``), as ``steering.alphas`` does. Every
    vector steered is unit, so one alpha is one matched norm for all of them."""
    auto_alphas: list[float] = Field(default_factory=lambda: [0.0, 30.0, 60.0])
    """'auto' alphas on the paper's scale (a subset of ``steering.auto_alphas``, to keep
    the sweep short)."""
    verdict_alpha: int = -1
    """Which non-zero alpha the verdicts compare at (an index into the non-zero alphas;
    -1: the largest). The tables report every alpha."""
    max_splits: int | None = Field(None, ge=1)
    """Steer only the first this many splits (None: all)."""
    min_refusals: int = Field(5, ge=1)
    """Fewer refusals than this on either side of a style comparison: not decidable."""


class StyleVsRateSection(_StyleRateSettings):
    """Steering along each split's direction d_c, the shared axis s and the specific part r_c."""


class SubspaceSection(_Section):
    """Ablating the top-k principal components of the split directions, and their span."""
    enabled: bool = True
    max_k: int = Field(5, ge=1, le=20)
    """Ablate the top-k components for k = 1..max_k (those that exist), then the whole span."""
    variance_target: float = Field(0.9, gt=0, le=1)
    """The cumulative share of the squared norm that counts as "spanned" in the PCA finding."""


class TailLatentsSection(_StyleRateSettings):
    """Steering with a split's tail SAE latents only; removing the tail, keeping the core.

    The latent sums are unit-normalised (as ``sae.steer`` does with 'auto' alphas), so the
    core and a tail are steered at matched norms."""


class LayerRobustnessSection(_Section):
    """The cosine matrix and clusters at layers around the chosen one."""
    enabled: bool = True
    window: int = Field(4, ge=1, le=16)
    """Layers L-window..L+window (those that exist) around the chosen layer L."""
    robust_within: int = Field(2, ge=0, le=16)
    """The verdict asks for robustness at every layer within L ± robust_within."""
    min_correlation: float = Field(0.8, ge=-1, le=1)
    """Off-diagonal cosines' Pearson correlation with the chosen layer's, at least."""
    min_ari: float = Field(0.5, ge=-1, le=1)
    """Adjusted Rand index of the clusters against the chosen layer's, at least."""


class CosmicSection(_Section):
    """Output-free (COSMIC-style) choice of layer and direction, against ours."""
    enabled: bool = True
    n_prompts: int = Field(16, ge=2, le=256)
    """Harmful (HR) and harmless (BC) prompts each, from the training pools, for the score."""
    low_similarity_fraction: float = Field(0.1, gt=0, le=1)
    """The share of layers (lowest harmful/harmless cosine) the score reads (COSMIC: 10%)."""
    max_layer_fraction: float = Field(0.8, gt=0, le=1)
    """Candidate layers are those below this share of the depth (COSMIC: 80%)."""
    kl_threshold: float | None = Field(0.1, gt=0)
    """Discard candidates whose ablation moves the harmless prompts' next-token distribution
    by a mean KL above this (COSMIC: 0.1; None: no filter)."""
    agree_layers: int = Field(1, ge=0)
    """The verdict "agree" needs the two layers within this many layers ..."""
    agree_cosine: float = Field(0.9, ge=-1, le=1)
    """... and the cosine between the two directions at least this."""


class BeyondSection(_Section):
    enabled: bool = False
    """Run the beyond-the-paper stages at all (each can also be turned off on its own)."""
    n_boot: int = Field(1000, ge=100)
    """Bootstrap resamples of the prompts for every rate's CI."""
    n_perm: int = Field(1000, ge=100)
    """Permutations for every p-value."""
    seed: int = 0
    style_vs_rate: StyleVsRateSection = Field(default_factory=StyleVsRateSection)
    subspace: SubspaceSection = Field(default_factory=SubspaceSection)
    tail_latents: TailLatentsSection = Field(default_factory=TailLatentsSection)
    layer_robustness: LayerRobustnessSection = Field(default_factory=LayerRobustnessSection)
    cosmic: CosmicSection = Field(default_factory=CosmicSection)
