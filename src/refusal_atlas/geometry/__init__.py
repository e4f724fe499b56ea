"""Geometry of the per-split refusal directions (METHOD.md, section Geometry).

One unit direction per split goes in; how they relate comes out:

* ``cosine``: the cosine-similarity matrix (and the checks on its inputs);
* ``clustering``: hierarchical clustering on ``1 - cosine`` (average and complete
  linkage), silhouette for k = 2..5, labels per k, the best k and a leaf order;
* ``mds``: a 2-D metric MDS embedding of the same distances;
* ``bootstrap``: stability of the directions recomputed from resampled HR/BC activations;
* ``analysis``: all of it at once (:func:`analyze_geometry`), as a ``GeometryResult``
  (``result``), read and written as ``geometry.json`` by ``io``.

Everything here is pure numpy/scipy/sklearn; the figures live in
:mod:`refusal_atlas.plots.geometry`.

Example:
    >>> import numpy as np
    >>> from refusal_atlas.geometry import analyze_geometry
    >>> rng = np.random.default_rng(0)
    >>> geo = analyze_geometry({f"s{i}": rng.normal(size=16) for i in range(4)})
    >>> geo.cosine.shape, geo.mds.shape
    ((4, 4), (4, 2))
"""

from .analysis import analyze_geometry, geometry_from_cosine
from .bootstrap import BootstrapResult, bootstrap_stability
from .clustering import (
    DEFAULT_KS,
    LINKAGES,
    PRIMARY_LINKAGE,
    ClusteringResult,
    LinkageClustering,
    cluster_cosine_matrix,
)
from .cosine import cosine_distance, cosine_matrix
from .io import GEOMETRY_JSON, load_geometry, save_geometry
from .mds import mds_coordinates
from .result import GeometryResult

__all__ = [
    "DEFAULT_KS",
    "GEOMETRY_JSON",
    "LINKAGES",
    "PRIMARY_LINKAGE",
    "BootstrapResult",
    "ClusteringResult",
    "GeometryResult",
    "LinkageClustering",
    "analyze_geometry",
    "bootstrap_stability",
    "cluster_cosine_matrix",
    "cosine_distance",
    "cosine_matrix",
    "geometry_from_cosine",
    "load_geometry",
    "mds_coordinates",
    "save_geometry",
]
