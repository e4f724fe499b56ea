"""Many models, one atlas: a cross-model report computed from several run folders.

* :func:`build_atlas` reads each model's run folder (through the report's section
  builders: geometry, steering, layer scan, SAE analysis), aligns the splits in one order
  (a split a model lacks is shown as missing, not an error) and compares every pair of
  models' geometries: the correlation of their off-diagonal cosines with a seeded
  permutation p-value (:func:`cosine_correlation`).
* :func:`write_atlas` draws the figures (each model's cosine heatmap side by side in one
  split order, dose-response per model, the cross-model cosine scatter) and writes
  ``compare.html`` (self-contained, in the report's style), ``compare.md`` and
  ``atlas.json``.

Like the report, the atlas reads run folders but never imports the pipeline: each run's
stage states come from the caller.

Example:
    >>> from refusal_atlas.atlas import build_atlas, write_atlas
    >>> from refusal_atlas.pipeline import STAGES, stage_states
    >>> runs = [(d, stage_states(d, STAGES)) for d in ("runs/atlas/a", "runs/atlas/b")]
    >>> write_atlas(build_atlas(runs, seed=0), "runs/atlas/compare")  # doctest: +SKIP
"""

from .build import FORMAT, AtlasData, build_atlas
from .html import render_atlas_html
from .load import load_model_run
from .markdown import render_atlas_markdown
from .similarity import align_matrix, cosine_correlation, split_order
from .write import ATLAS_JSON, COMPARE_HTML, COMPARE_MD, write_atlas

__all__ = ["ATLAS_JSON", "COMPARE_HTML", "COMPARE_MD", "FORMAT", "AtlasData", "align_matrix",
           "build_atlas", "cosine_correlation", "load_model_run", "render_atlas_html",
           "render_atlas_markdown", "split_order", "write_atlas"]
