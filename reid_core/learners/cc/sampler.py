"""Identity-balanced batches: P pseudo-identities x K instances, other cameras first.

As cluster-contrast's ``RandomMultipleGallerySampler``: for each pseudo-identity an
anchor image, then K - 1 more of the same cluster taken from other cameras than the
anchor's when there are any (without replacement when enough, else with), from the
same camera otherwise. Camera ids are what an edge knows; identity labels are never read.
Outliers (label -1) are never sampled.
"""

from __future__ import annotations

import math

import numpy as np


def _pick(pool: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(pool, size=size, replace=len(pool) < size)


def identity_instances(members: np.ndarray, cams: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K image indices of one cluster: an anchor, then others preferring another camera."""
    anchor = int(rng.integers(len(members)))
    if k == 1:
        return members[[anchor]]
    other_cam = np.flatnonzero(cams != cams[anchor])
    if len(other_cam):
        rest = _pick(other_cam, k - 1, rng)
    else:
        others = np.delete(np.arange(len(members)), anchor)
        rest = _pick(others if len(others) else np.array([anchor]), k - 1, rng)
    return members[np.concatenate(([anchor], rest))]


def pk_batches(labels: np.ndarray, camids: np.ndarray, p: int, k: int, num_batches: int,
               rng: np.random.Generator) -> list[np.ndarray]:
    """`num_batches` batches of up to P x K indices; identities cycle through shuffled passes.

    Each batch holds P distinct pseudo-identities (fewer when the edge has fewer), K images each.
    """
    labels, camids = np.asarray(labels), np.asarray(camids)
    if labels.shape != camids.shape:
        raise ValueError(f"labels {labels.shape} and camids {camids.shape} differ")
    if p < 1 or k < 1:
        raise ValueError(f"P and K must be >= 1, got {p}, {k}")
    clusters = np.unique(labels[labels >= 0])
    if len(clusters) == 0 or num_batches < 1:
        return []
    by_cluster = {int(c): np.flatnonzero(labels == c) for c in clusters}
    p = min(p, len(clusters))
    order: list[int] = []
    batches = []
    for _ in range(num_batches):
        if len(order) < p:  # a new shuffled pass; the last pass's leftovers go to its end
            left = set(order)
            fresh = rng.permutation(clusters).tolist()
            order += [c for c in fresh if c not in left] + [c for c in fresh if c in left]
        chosen, order = order[:p], order[p:]
        batches.append(np.concatenate([identity_instances(by_cluster[c], camids[by_cluster[c]], k, rng)
                                       for c in chosen]))
    return batches


def batches_per_epoch(num_clustered: int, batch_size: int, iters: int) -> int:
    """`iters` when set, else as many batches as one pass over the clustered images takes."""
    return iters if iters > 0 else max(1, math.ceil(num_clustered / batch_size))
