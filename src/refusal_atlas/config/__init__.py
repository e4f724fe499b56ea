"""Run configuration: typed, validated, nested like the pipeline, with presets and
command-line overrides.

A config is YAML, TOML or JSON with one section per stage (``model``, ``data``, ``labels``,
``pools``, ``activations``, ``layer_scan``, ``geometry``, ``steering``, ``sae`` with
``sae.train`` / ``sae.corpus`` / ``sae.analysis`` / ``sae.steer``, ``style``, ``report``).
Unknown keys and bad values are errors that name the key; a judge's or a style backend's
options are checked against that plugin's own ``Settings``.

Example:
    >>> from refusal_atlas.config import load_config
    >>> cfg = load_config(preset="demo", set_values=["sae.train.steps=200"])
    >>> cfg.sae.train.steps
    200
"""

from .load import load_config, parse_override, saved_run_config
from .migrate import migrate_config
from .presets import PRESET_DIR, list_presets
from .run import RunConfig
from .sae import SAE_RENAMED_KEYS, SAESection
from .sections import (
    ActivationsSection,
    DataSection,
    GeometrySection,
    LabelsSection,
    LayerScanSection,
    ModelSection,
    PoolsSection,
    ReportSection,
    SteeringSection,
    StyleSection,
)

__all__ = ["PRESET_DIR", "SAE_RENAMED_KEYS", "ActivationsSection", "DataSection",
           "GeometrySection", "LabelsSection", "LayerScanSection", "ModelSection",
           "PoolsSection", "ReportSection", "RunConfig", "SAESection", "SteeringSection",
           "StyleSection", "list_presets", "load_config", "migrate_config", "parse_override",
           "saved_run_config"]
