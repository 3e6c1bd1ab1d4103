"""How many people an edge has seen, from unlabeled features and the camera of each image.

Counting identities straight from the features fails where the features cannot tell two
cameras' views of one person apart: every (person, camera) pair then looks like a person
of its own (2-3x over-counts on the synthetic edges), and on sets with one image of a
person per camera (VIPeR, PRID2011) there is nothing short to count at all (3x
under-counts). Within one camera the question is easier: images of one person there are
near-duplicates (one walk past the camera) or absent. So each camera is counted alone,
and the edge's count is the mean over its cameras: each person passes most of an edge's
cameras, as in every ReID training set (a person is kept when two cameras saw them).

What is short inside a camera is judged against the nearest image in the *other*
cameras: the images of other captures. When a camera's nearest neighbours are rarely
closer than that reference, it holds one image per person (count = its images); when
most are, its near-duplicates stand apart and an inverse count counts them: an image with
c neighbours nearer than the reference's COUNT_QUANTILE adds 1 / (c + 1). (Otsu's split of
the camera's own distances, as in `estimate_num_identities`, under-counts once training has
pulled one camera's different people together: 22 / 20 / 24 / 10 / 18 for the demo's
35 / 30 / 40 / 15 / 25 people after round 1.)
In between, the features cannot tell a second image of one person from a look-alike:
the camera's own split counts it, and the estimate is marked untrusted; Personalized
Clustering then merges the baseline's fixed amount instead (measured per client in
docs/results.md).

Camera ids only; no identity label is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from reid_core.features import remove_camera_means
from reid_core.runtime.knn import knn_search, search_base

logger = logging.getLogger(__name__)

# The reference: this quantile of the distances from a camera's images to their nearest image in
# the other cameras (captures of somebody, seen elsewhere). Nearer than it counts as a near-duplicate.
REFERENCE_QUANTILE = 0.05
# A camera whose near-duplicate share is below NONE_BELOW holds one image per person; above
# CLEAR_ABOVE its duplicates stand apart. Measured on the shared sets and the demo (last round):
# one image a person gives 0.00-0.06, the synthetic edges 0.57-0.97, cuhk03 (five images a person
# a camera, weak features) 0.22-0.37 and i-LIDS's second camera 0.20: between, not trusted.
NONE_BELOW = 0.10
CLEAR_ABOVE = 0.50
# Neighbours nearer than this quantile of the reference count as the same person. Chosen on the
# features of the demo (round 0, the last round of two runs) and of the real sets (round 0, round 3):
# quantiles 0.25-0.40 kept every trusted estimate within 33% of the true count, 0.35 within 25%
# (docs/results.md, "Counting an edge's people").
COUNT_QUANTILE = 0.35
# Neighbours each image looks at within its camera: people seen more often in one camera are over-counted.
COUNT_NEIGHBOURS = 30
# Cameras holding less than this share of the images do not decide whether the estimate is trusted.
MINOR_CAMERA_SHARE = 0.10


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
        features = remove_camera_means(features, camids)
    dist, _ = knn_search(features, min(k, num_points - 1), backend=backend)
    estimate = _inverse_count(np.log(np.maximum(dist.astype(np.float64), 1e-12)))
    logger.debug("estimated %d identities among %d images", estimate, num_points)
    return estimate


def _inverse_count(log_dist: np.ndarray) -> int:
    """Sum of 1 / (c + 1) over images, c = neighbours below Otsu's split of all (n, k) log distances."""
    if np.ptp(log_dist) == 0.0:
        return len(log_dist)  # no gap to find: every neighbour equally far
    short = np.sum(log_dist <= _otsu_threshold(log_dist.ravel()), axis=1)
    return int(np.clip(round(float(np.sum(1.0 / (short + 1)))), 1, len(log_dist)))


@dataclass(frozen=True)
class CameraCount:
    """One camera's count: its images, how many have a near-duplicate, the people it saw."""

    camera: int
    images: int
    duplicate_share: float
    identities: int

    @property
    def clear(self) -> bool:
        return self.duplicate_share < NONE_BELOW or self.duplicate_share > CLEAR_ABOVE


@dataclass(frozen=True)
class IdentityEstimate:
    """An edge's estimated number of identities and whether its features could tell."""

    count: int
    trusted: bool
    cameras: tuple[CameraCount, ...] = ()
    reason: str = ""


def duplicate_share(within_nn: np.ndarray, other_camera_nn: np.ndarray,
                    quantile: float = REFERENCE_QUANTILE) -> float:
    """Share of images whose nearest same-camera image is nearer than the reference distance.

    ``within_nn``: each image's distance to its nearest other image of the same camera;
    ``other_camera_nn``: each image's distance to its nearest image of another camera.
    """
    within_nn, other_camera_nn = np.asarray(within_nn, float), np.asarray(other_camera_nn, float)
    if within_nn.ndim != 1 or other_camera_nn.ndim != 1 or not len(within_nn) or not len(other_camera_nn):
        raise ValueError("within_nn and other_camera_nn must be non-empty 1-D arrays")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return float(np.mean(within_nn < np.quantile(other_camera_nn, quantile)))


def camera_count(within_knn: np.ndarray, other_camera_nn: np.ndarray, share: float) -> int:
    """People one camera saw: its images when they have no near-duplicates, else an inverse count.

    Clear near-duplicates (share > CLEAR_ABOVE): neighbours nearer than the reference's
    COUNT_QUANTILE count; in between (untrusted), Otsu's split of the camera's own distances,
    which lands nearer on the in-between cameras measured (i-LIDS's second: 50 for 60 people
    against 108; cuhk03 after training: 759 / 828 for 422 against 964 a camera).

    ``within_knn``: (n, k) distances of each image of the camera to its k nearest others there;
    ``other_camera_nn``: (n,) distances to the nearest image of another camera; ``share``: the
    camera's :func:`duplicate_share`.
    """
    within_knn = np.asarray(within_knn, float)
    if within_knn.ndim != 2 or len(within_knn) != len(other_camera_nn):
        raise ValueError(f"within_knn must be (n, k) with n = {len(other_camera_nn)}, got {within_knn.shape}")
    if share < NONE_BELOW:
        return len(within_knn)
    if share <= CLEAR_ABOVE:  # the reference does not separate: the camera's own split of its distances
        return _inverse_count(np.log(np.maximum(within_knn, 1e-12)))
    near = np.sum(within_knn < np.quantile(np.asarray(other_camera_nn, float), COUNT_QUANTILE), axis=1)
    return max(1, int(round(float(np.sum(1.0 / (near + 1))))))


def is_trusted(cameras: tuple[CameraCount, ...]) -> bool:
    """Trusted when every camera holding at least MINOR_CAMERA_SHARE of the images is clear."""
    total = sum(c.images for c in cameras)
    return bool(cameras) and all(c.clear for c in cameras if c.images >= MINOR_CAMERA_SHARE * total)


def estimate_identities(features: np.ndarray, camids: np.ndarray | None) -> IdentityEstimate:
    """Estimate the identities among an edge's training features (see the module's text).

    With one camera (or no camera ids) there is no reference to judge "short" by: the
    inverse-count estimate on all images, untrusted.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty (N, d) array, got shape {features.shape}")
    if camids is None or len(np.unique(camids)) < 2:
        return IdentityEstimate(estimate_num_identities(features), False, reason="one camera: no reference")
    camids = np.asarray(camids)
    if camids.shape != (len(features),):
        raise ValueError(f"camids must have shape ({len(features)},), got {camids.shape}")
    feats = remove_camera_means(features, camids)
    counts = []
    for cam in np.unique(camids):
        mine = camids == cam
        if mine.sum() < 2:
            counts.append(CameraCount(int(cam), int(mine.sum()), 0.0, int(mine.sum())))
            continue
        within, _ = knn_search(feats[mine], min(COUNT_NEIGHBOURS, int(mine.sum()) - 1))
        other, _ = search_base(feats[mine], feats[~mine], 1)
        share = duplicate_share(within[:, 0], other[:, 0])
        counts.append(CameraCount(int(cam), int(mine.sum()), share, camera_count(within, other[:, 0], share)))
    cameras = tuple(counts)
    estimate = int(round(float(np.mean([c.identities for c in cameras]))))
    trusted = is_trusted(cameras)
    reason = "" if trusted else "near-duplicates do not stand apart in " + ", ".join(
        f"camera {c.camera} ({c.duplicate_share:.2f})" for c in cameras if not c.clear)
    return IdentityEstimate(max(1, estimate), trusted, cameras, reason)
