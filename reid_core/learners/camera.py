"""Camera-aware pieces an edge may use: it knows which of its cameras took each image.

Each image's nearest image from another camera (a weak second target), and the edge's own
BatchNorm statistics. Removing each camera's mean feature is `reid_core.features.remove_camera_means`.
Camera ids only: no identities.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reid_core.features import remove_camera_means

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def with_local_bn_statistics(received: Mapping[str, np.ndarray],
                             local: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The received model with this edge's own BatchNorm statistics (FedBN-style).

    BatchNorm running means and variances describe one edge's images; averaged over
    very different edges they fit none. Weights still come from the federation.
    """
    out = dict(received)
    if local is None:
        return out
    for key, value in local.items():
        if key.rsplit(".", 1)[-1] in BN_BUFFERS and key in out:
            out[key] = value
    return out


def cross_camera_partners(features: np.ndarray, camids: np.ndarray, *, mutual: bool = False) -> np.ndarray:
    """Each image's nearest neighbour (cosine) among images of *other* cameras; -1 if none.

    Most images of a person taken by one camera resemble each other more than any
    image of that person from another camera, so bottom-up merging on its own joins
    within a camera and never teaches the network to bridge cameras. The nearest
    cross-camera image (after each camera's mean is removed) is a weak positive
    that does. With ``mutual`` a pair is kept only when each is the other's partner
    (fewer pairs, more of them right). Camera ids only: no identities.

    Parameters
    ----------
    features : np.ndarray, shape (N, d)
    camids : np.ndarray, shape (N,)
    mutual : bool

    Returns
    -------
    np.ndarray of int64, shape (N,)
        Index of the partner image, or -1 (single-camera edge, or not mutual).
    """
    feats = remove_camera_means(features, camids)
    camids = np.asarray(camids)
    partners = np.full(len(feats), -1, dtype=np.int64)
    if len(np.unique(camids)) < 2:
        return partners
    # blocks of rows keep memory at (block x N) instead of N x N
    for start in range(0, len(feats), 1024):
        rows = slice(start, start + 1024)
        sims = feats[rows] @ feats.T
        sims[camids[rows, None] == camids[None, :]] = -np.inf
        partners[rows] = np.argmax(sims, axis=1)
    if mutual:
        back = partners[partners]
        partners[back != np.arange(len(feats))] = -1
    return partners
