"""Personalized Clustering: how many clusters each edge merges per round.

The paper's baseline merges m = floor(N * mp) clusters every round on every edge,
which over-merges small edges (VIPeR: 632 images, 316 identities, ends with 43
clusters after 19 steps of mp = 0.05). The profiler instead spreads the gap
between the current cluster count and the edge's number of identities over the
remaining merge steps (EasyFL's unused ``get_merge_percent`` does the same with
m = (N - I) / R). When the operator does not know the identity count, it is
estimated once from the unlabeled features (:func:`estimate_num_identities`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from reid_core.config.schema import ClusterConfig
from reid_core.runtime.knn import knn_search

logger = logging.getLogger(__name__)

MODES = ("fixed", "personalized")


def fixed_merge_amount(num_images: int, merge_percent: float) -> int:
    """Paper baseline: floor(N * mp) (a 1e-9 slack keeps 100 * 0.29 at 29)."""
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    if not 0.0 <= merge_percent <= 1.0:
        raise ValueError(f"merge_percent must be in [0, 1], got {merge_percent}")
    return int(math.floor(num_images * merge_percent + 1e-9))


def personalized_merge_amount(num_clusters: int, target_clusters: int, rounds_left: int) -> int:
    """Merge floor((C - target) / rounds_left) clusters now; 0 when C <= target.

    Recomputed every step, this ends exactly at ``target_clusters`` after the last
    step (the remainder lands on the last steps) and never goes below it.
    """
    if num_clusters < 1 or target_clusters < 1:
        raise ValueError(
            f"num_clusters and target_clusters must be >= 1, got {num_clusters}, {target_clusters}"
        )
    if rounds_left < 1:
        raise ValueError(f"rounds_left must be >= 1 (this step counts), got {rounds_left}")
    return max(0, (num_clusters - target_clusters) // rounds_left)


def _otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Threshold maximising the between-class variance of a 1-D sample."""
    counts, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass_low / weight_low
        mean_high = (mass_low[-1] - mass_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between[~np.isfinite(between)] = -1.0
    return float(edges[np.argmax(between) + 1])


def estimate_num_identities(
    features: np.ndarray,
    camids: np.ndarray | None = None,
    k: int = 40,
    backend: str = "auto",
) -> int:
    """Estimate how many identities unlabeled features contain.

    Inverse-count estimator: split the log k-NN distances of all images into
    "same identity" (short) and "other identity" (long) with Otsu's threshold; an
    image with c short neighbours belongs to an identity of about c + 1 images, so
    each image adds 1 / (c + 1) and each identity adds about 1 in total. Unlike
    counting single-linkage components, one stray short edge between two
    identities moves the estimate by little. With ``camids`` (known to an edge
    without labels; not identity labels) each camera's mean feature is removed
    first, so camera bias does not split an identity into one cluster per camera.

    Parameters
    ----------
    features : np.ndarray, shape (N, d)
    camids : np.ndarray, shape (N,), optional
        Camera of each image.
    k : int
        Neighbours per image; identities larger than k + 1 images are over-counted.
    backend : str
        k-NN backend, see :func:`reid_core.runtime.knn.knn_search`.

    Returns
    -------
    int
        Estimate in 1..N. Measured on synthetic Gaussian identities (2-40 images
        each, 30-150 identities; tests/reid_core/test_profiler.py): within 1% when
        identities are separated (median error 0.3%); where intra distances
        approach inter ones (d=64, noise 1.0-1.2) from -19% (pairs of images) to
        +127% (identities of 10-40 images). It assumes identities of >= 2 images.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty (N, d) array, got shape {features.shape}")
    num_points = len(features)
    if num_points < 3:
        return num_points
    if camids is not None:
        camids = np.asarray(camids)
        if camids.shape != (num_points,):
            raise ValueError(f"camids must have shape ({num_points},), got {camids.shape}")
        features = features.copy()
        for cam in np.unique(camids):
            features[camids == cam] -= features[camids == cam].mean(axis=0)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        features /= np.maximum(norms, 1e-12)
    dist, _ = knn_search(features, min(k, num_points - 1), backend=backend)
    log_dist = np.log(np.maximum(dist.astype(np.float64), 1e-12))
    if np.ptp(log_dist) == 0.0:
        return num_points  # no gap to find: every neighbour equally far
    short = np.sum(log_dist <= _otsu_threshold(log_dist.ravel()), axis=1)
    estimate = int(np.clip(round(float(np.sum(1.0 / (short + 1)))), 1, num_points))
    logger.info("estimated %d identities among %d images", estimate, num_points)
    return estimate


def camera_floor(camids: np.ndarray) -> int:
    """Fewest clusters an edge keeps under ``pc.camera_floor``: ceil(N / number of cameras).

    A pseudo-identity then holds on average at most one image per camera. On the small
    sets (VIPeR, PRID2011: one image per person per camera) this is their number of
    people; the profiler's unlabeled estimate under-counts them 1.2-3.4x (docs/results.md).
    Camera ids only.
    """
    camids = np.asarray(camids)
    if camids.ndim != 1 or len(camids) == 0:
        raise ValueError(f"camids must be a non-empty 1-D array, got shape {camids.shape}")
    return int(math.ceil(len(camids) / len(np.unique(camids))))


class Profiler:
    """Pick each round's merge amount per :class:`ClusterConfig` ``mode``.

    Parameters
    ----------
    config : ClusterConfig
    total_merge_steps : int
        Merge steps in the run (rounds - 1 in FedUReID).
    num_images : int, optional
        Training images of this edge; otherwise taken from the first ``features``
        (or from ``num_clusters`` at round 0, when every image is its own cluster).
    """

    def __init__(self, config: ClusterConfig, total_merge_steps: int, num_images: int | None = None) -> None:
        if config.mode not in MODES:
            raise ValueError(f"unknown cluster mode {config.mode!r}; expected one of {MODES}")
        if total_merge_steps < 1:
            raise ValueError(f"total_merge_steps must be >= 1, got {total_merge_steps}")
        self.config = config
        self.total_merge_steps = total_merge_steps
        self.num_images = num_images
        self.estimated_identities: int | None = None

    def target_clusters(self, features: np.ndarray | None = None, camids: np.ndarray | None = None) -> int:
        """The operator's identity count, else the (cached) estimate."""
        if self.config.num_identities is not None:
            return int(self.config.num_identities)
        if self.estimated_identities is None:
            if features is None:
                raise ValueError(
                    "personalized clustering needs features to estimate the number of identities "
                    "(or set ClusterConfig.num_identities)"
                )
            self.estimated_identities = estimate_num_identities(features, camids)
        return self.estimated_identities

    def num_merge(self, round_idx: int, num_clusters: int, features: np.ndarray | None = None,
                  camids: np.ndarray | None = None) -> int:
        """Clusters to merge at merge step ``round_idx`` (0-based); 0 past the last step."""
        if round_idx < 0 or num_clusters < 1:
            raise ValueError(f"need round_idx >= 0 and num_clusters >= 1, got {round_idx}, {num_clusters}")
        if self.num_images is None:
            if features is not None:
                self.num_images = len(features)
            elif round_idx == 0:
                self.num_images = num_clusters
        if round_idx >= self.total_merge_steps:
            return 0
        floor = 1
        if self.config.camera_floor:
            if camids is None:
                raise ValueError("pc.camera_floor needs the camera id of every training image")
            floor = camera_floor(camids)
        if self.config.mode == "fixed":
            if self.num_images is None:
                raise ValueError("fixed merging needs the number of images (pass features or num_images)")
            return max(0, min(fixed_merge_amount(self.num_images, self.config.merge_percent), num_clusters - floor))
        target = max(self.target_clusters(features, camids), floor)
        amount = personalized_merge_amount(num_clusters, target, self.total_merge_steps - round_idx)
        if self.config.max_merge_percent is not None:
            # Why: a target reached in few steps merges 15-30% of N per step, and with weak
            # features most of those merges join two people (docs/results.md, section 2d).
            if self.num_images is None:
                raise ValueError("pc.max_merge_percent needs the number of images (pass features or num_images)")
            amount = min(amount, fixed_merge_amount(self.num_images, self.config.max_merge_percent))
        return amount

    def state_dict(self) -> dict[str, Any]:
        """JSON-friendly state to restore after a restart."""
        return {"num_images": self.num_images, "estimated_identities": self.estimated_identities}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (missing keys keep their value)."""
        unknown = set(state) - {"num_images", "estimated_identities"}
        if unknown:
            raise ValueError(f"unknown profiler state keys: {sorted(unknown)}")
        for key in ("num_images", "estimated_identities"):
            if state.get(key) is not None:
                setattr(self, key, int(state[key]))
