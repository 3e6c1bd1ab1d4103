"""Learning diagnostics: how right an edge's pseudo-labels and features are, for reporting only.

They compare what the learner made (clusters, merges, nearest neighbours) with the
identities in the training file names. Those identities never reach training: the
learner computes these numbers after it has chosen its labels, and a test shows that
shuffling them leaves the model and labels bit-identical. An edge whose names carry
no identities reports none (:func:`known_identities`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reid_core.runtime.knn import knn_search, search_base


def known_identities(pids: Sequence[int]) -> np.ndarray | None:
    """The training identities, or None when any image has none (pid <= 0: unknown/distractor)."""
    ids = np.asarray(pids, dtype=np.int64)
    if ids.size == 0 or np.any(ids <= 0):
        return None
    return ids


def cluster_purity(labels: np.ndarray, pids: np.ndarray) -> float:
    """Share of images that carry their cluster's majority identity (1.0 for singletons)."""
    labels, pids = _check(labels, pids)
    _, pid_idx = np.unique(pids, return_inverse=True)
    pairs = labels.astype(np.int64) * (pid_idx.max() + 1) + pid_idx
    keys, counts = np.unique(pairs, return_counts=True)
    cluster_of_key = keys // (pid_idx.max() + 1)
    majority = np.zeros(labels.max() + 1, dtype=np.int64)
    np.maximum.at(majority, cluster_of_key, counts)
    return float(majority.sum() / len(labels))


def merge_precision(pairs: np.ndarray, pids: np.ndarray) -> float:
    """Share of merges whose linking image pair (i, j) is one person; NaN without merges."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return float("nan")
    return float(np.mean(pids[pairs[:, 0]] == pids[pairs[:, 1]]))


def nn_precision(features: np.ndarray, pids: np.ndarray, camids: np.ndarray | None = None) -> dict[str, float]:
    """Share of images whose nearest other image is the same person.

    With camera ids also ``cross_camera``: the nearest image from another camera
    (what a camera-aware method can aim at); NaN when the edge has one camera.
    """
    pids = np.asarray(pids)
    if len(pids) < 2:
        return {"all": float("nan"), "cross_camera": float("nan")}
    _, idx = knn_search(features, 1)
    out = {"all": float(np.mean(pids[idx[:, 0]] == pids))}
    if camids is not None:
        out["cross_camera"] = _cross_camera_nn(features, pids, np.asarray(camids))
    return out


def _cross_camera_nn(features: np.ndarray, pids: np.ndarray, camids: np.ndarray) -> float:
    hits, total = 0, 0
    for cam in np.unique(camids):
        mine, others = np.flatnonzero(camids == cam), np.flatnonzero(camids != cam)
        if len(others) == 0:
            continue
        _, idx = search_base(features[mine], features[others], 1)
        hits += int(np.sum(pids[others[idx[:, 0]]] == pids[mine]))
        total += len(mine)
    return hits / total if total else float("nan")


def round_diagnostics(labels: np.ndarray, pids: np.ndarray | None, *, merge_pairs: np.ndarray | None = None,
                      features: np.ndarray | None = None, camids: np.ndarray | None = None) -> dict[str, float]:
    """The scalar metrics an edge reports per round ({} without identities).

    ``labels`` are the ones the next round trains on; ``merge_pairs`` and ``features``
    are this round's merge and the features it used, when it merged.
    """
    if pids is None:
        return {}
    identities = len(np.unique(pids))
    out = {"diag-purity": cluster_purity(labels, pids), "diag-identities": identities,
           "diag-clusters-per-identity": float((labels.max() + 1) / identities)}
    if merge_pairs is not None and len(merge_pairs):
        out["diag-merge-precision"] = merge_precision(merge_pairs, pids)
    if features is not None:
        nn = nn_precision(features, pids, camids)
        out["diag-nn-precision"] = nn["all"]
        if camids is not None and np.isfinite(nn["cross_camera"]):
            out["diag-nn-precision-cross-camera"] = nn["cross_camera"]
    return out


def _check(labels: np.ndarray, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, pids = np.asarray(labels), np.asarray(pids)
    if labels.shape != pids.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels and pids must be 1-D of one non-zero length, got {labels.shape}, {pids.shape}")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    return labels.astype(np.int64), pids
