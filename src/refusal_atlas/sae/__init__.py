"""Sparse autoencoders: the SAE module, loaders for published SAEs, training, latent analysis.

Public API::

    from refusal_atlas.sae import SAE, SAEInfo, check_compatible
    from refusal_atlas.sae import load_sae, load_gemma_scope, load_saelens_dir, ...
    from refusal_atlas.sae import SAETrainConfig, train_sae, evaluate_sae
    from refusal_atlas.sae import analyze_latents, build_sae_bank, compare_with_directions

Conventions (see :mod:`refusal_atlas.sae.models`): ``sae.info.hook_layer = L`` means the SAE
reads ``resid_pre`` of HF block L (input of ``model.layers[L]``); Gemma Scope "layer L" and
``blocks.L.hook_resid_post`` are ``hook_layer = L + 1``.

Names are imported on first use: the run config imports :class:`SAETrainConfig` (its
``sae.train`` section), and loading a config must not import torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# name -> module that defines it
_API = {
    # the SAE
    "ARCHITECTURES": "models", "SAE": "models", "Architecture": "models", "SAEInfo": "models",
    "check_compatible": "models", "hook_layer_from_name": "models",
    # formats
    "hub_download": "loaders", "load_dictionary_learning": "loaders",
    "load_gemma_scope": "loaders", "load_sae": "loaders", "load_saelens_dir": "loaders",
    "load_saelens_pretrained": "loaders", "save_saelens_dir": "loaders",
    # training
    "SAETrainConfig": "train", "SAETrainReport": "train", "evaluate_sae": "train",
    "geometric_median": "train", "norm_outlier_mask": "train", "train_sae": "train",
    # latents that carry refusal, and steering with them
    "LatentAnalysis": "analysis", "PromptInfo": "analysis", "analyze_latents": "analysis",
    "encode_rows": "analysis", "describe_analysis": "describe", "latents_markdown": "describe",
    "build_sae_bank": "steering", "choose_steer_splits": "steering",
    "vector_cosines": "steering", "compare_with_directions": "comparison",
    "comparison_markdown": "comparison",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
