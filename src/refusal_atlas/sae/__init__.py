"""Sparse autoencoders: the SAE module, loaders for published SAEs, and training.

Public API::

    from refusal_atlas.sae import SAE, SAEInfo, check_compatible
    from refusal_atlas.sae import load_sae, load_gemma_scope, load_saelens_dir, ...
    from refusal_atlas.sae import SAETrainConfig, train_sae, evaluate_sae

Conventions (see :mod:`refusal_atlas.sae.models`): ``sae.info.hook_layer = L`` means the SAE
reads ``resid_pre`` of HF block L (input of ``model.layers[L]``); Gemma Scope "layer L" and
``blocks.L.hook_resid_post`` are ``hook_layer = L + 1``.
"""

from .loaders import (
    hub_download,
    load_dictionary_learning,
    load_gemma_scope,
    load_sae,
    load_saelens_dir,
    load_saelens_pretrained,
    save_saelens_dir,
)
from .models import (
    ARCHITECTURES,
    SAE,
    Architecture,
    SAEInfo,
    check_compatible,
    hook_layer_from_name,
)
from .train import (
    SAETrainConfig,
    SAETrainReport,
    evaluate_sae,
    geometric_median,
    norm_outlier_mask,
    train_sae,
)

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "Architecture",
    "SAEInfo",
    "SAETrainConfig",
    "SAETrainReport",
    "check_compatible",
    "evaluate_sae",
    "geometric_median",
    "hook_layer_from_name",
    "hub_download",
    "load_dictionary_learning",
    "load_gemma_scope",
    "load_sae",
    "load_saelens_dir",
    "load_saelens_pretrained",
    "norm_outlier_mask",
    "save_saelens_dir",
    "train_sae",
]
