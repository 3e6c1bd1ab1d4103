"""Pseudo-labels of one epoch: sparse Jaccard distance -> scikit-learn DBSCAN; -1 = outlier.

Personalized Clustering of this learner is the choice of ``min_samples`` per edge
(``cc.min_samples: 0``): cluster-contrast's 4 on an edge of at least
``LARGE_EDGE_IMAGES`` training images (Market, Duke, MSMT, CUHK03), 2 on a smaller one
(VIPeR and PRID2011 have 2 images a person, i-LIDS ~4): a DBSCAN core point needs
``min_samples`` images within eps, itself included, so 4 can never find a person seen
twice. When the operator knows the edge's number of identities (``data.num_identities``)
the rule reads the mean images per identity instead: 2 below 4 images a person, else 4.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reid_core.features import remove_camera_means
from reid_core.learners.cc.jaccard import sparse_jaccard_distance

LARGE_EDGE_IMAGES = 2000


def auto_min_samples(num_images: int, num_identities: int | None = None) -> int:
    """The documented per-edge default of DBSCAN's min_samples (see the module doc)."""
    if num_identities:
        return 2 if num_images / num_identities < 4 else 4
    return 4 if num_images >= LARGE_EDGE_IMAGES else 2


@dataclass(frozen=True)
class Clustering:
    """One epoch's pseudo-labels (0..C-1, -1 outlier) and what the step cost."""

    labels: np.ndarray
    num_clusters: int
    outliers: int
    min_samples: int
    seconds: float


def sort_rows_by_distance(dist: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's entries in increasing distance (scikit-learn wants it; it sorts row by row in Python)."""
    rows = np.repeat(np.arange(dist.shape[0]), np.diff(dist.indptr))
    order = np.lexsort((dist.data, rows))
    return sp.csr_matrix((dist.data[order], dist.indices[order], dist.indptr), shape=dist.shape)


def dbscan_labels(dist: sp.csr_matrix, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN on a sparse precomputed distance; missing entries are not neighbours.

    Stored zeros (identical images) are neighbours: scikit-learn reads stored entries.
    """
    from sklearn.cluster import DBSCAN
    from sklearn.exceptions import EfficiencyWarning

    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1): a missing pair is at distance 1, got {eps}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    dist = sp.csr_matrix(dist)
    within = dist.data <= eps
    if not within.all():  # only pairs within eps matter to DBSCAN
        rows = np.repeat(np.arange(dist.shape[0]), np.diff(dist.indptr))[within]
        dist = sp.csr_matrix((dist.data[within], (rows, dist.indices[within])), shape=dist.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EfficiencyWarning)
        return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(
            sort_rows_by_distance(dist)).astype(np.int64)


def cluster_features(features: np.ndarray, *, k1: int, k2: int, eps: float, min_samples: int,
                     backend: str = "auto", camids: np.ndarray | None = None, camera_means: bool = False,
                     camera_penalty: float = 0.0) -> Clustering:
    """Jaccard + DBSCAN on `features` (N, d) with a fixed min_samples.

    Camera-aware options (camera ids only): ``camera_means`` removes each camera's mean
    feature first; ``camera_penalty`` adds to the squared distance of two images of one
    camera (see :func:`reid_core.learners.cc.jaccard.camera_aware_search`).
    """
    import time

    t0 = time.perf_counter()
    if (camera_means or camera_penalty) and camids is None:
        raise ValueError("camera_means and camera_penalty need the images' camera ids (camids)")
    if camera_means:
        features = remove_camera_means(features, camids)
    dist = sparse_jaccard_distance(features, k1, k2, max_distance=eps, backend=backend, camids=camids,
                                   camera_penalty=camera_penalty)
    labels = dbscan_labels(dist, eps, min_samples)
    return Clustering(labels=labels, num_clusters=int(labels.max()) + 1, outliers=int((labels < 0).sum()),
                      min_samples=min_samples, seconds=time.perf_counter() - t0)
