"""Personalized Clustering: how many clusters each edge merges per round.

The paper's baseline merges m = floor(N * mp) clusters every round on every edge,
which over-merges small edges (VIPeR: 632 images, 316 identities, ends with 43
clusters after 19 steps of mp = 0.05). The profiler instead spreads the gap
between the current cluster count and the edge's number of identities over the
remaining merge steps (EasyFL's unused ``get_merge_percent`` does the same with
m = (N - I) / R). When the operator does not know the identity count, it is
estimated again every round from the unlabeled features and camera ids
(:mod:`reid_core.personalization.identity_count`); while the features cannot tell
(the estimate is untrusted), the edge merges the baseline's fixed amount, and so it
does where the clusters the count asks for lie below the camera floor.
"""

from __future__ import annotations

import logging
import math
import statistics
from typing import Any

import numpy as np

from reid_core.config.choices import ESTIMATORS
from reid_core.config.schema import ClusterConfig
from reid_core.personalization.identity_count import IdentityEstimate, estimate_identities, estimate_num_identities

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


def trusted_median(counts: list[int], latest: IdentityEstimate) -> IdentityEstimate:
    """The median of an edge's trusted counts (rounded), with the latest estimate's cameras and reason."""
    if not counts or not latest.trusted:
        raise ValueError("trusted_median needs at least one count and a trusted latest estimate")
    return IdentityEstimate(int(round(statistics.median(counts))), True, latest.cameras, latest.reason)


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

    STATE_KEYS = ("num_images", "estimated_identities", "estimate_trusted", "trusted_counts")

    def __init__(self, config: ClusterConfig, total_merge_steps: int, num_images: int | None = None) -> None:
        if config.mode not in MODES:
            raise ValueError(f"unknown cluster mode {config.mode!r}; expected one of {MODES}")
        if total_merge_steps < 1:
            raise ValueError(f"total_merge_steps must be >= 1, got {total_merge_steps}")
        if config.estimator not in ESTIMATORS:
            raise ValueError(f"unknown identity estimator {config.estimator!r}; expected one of {ESTIMATORS}")
        self.config = config
        self.total_merge_steps = total_merge_steps
        self.num_images = num_images
        self.estimate: IdentityEstimate | None = None  # the count the edge goes by (see observe)
        self.trusted_counts: list[int] = []  # every trusted per_camera estimate so far, one per call

    @property
    def wants_received_features(self) -> bool:
        """True when the estimate also reads the received model's features, before round 1 trains."""
        return (self.config.mode == "personalized" and self.config.num_identities is None
                and self.config.estimator == "per_camera")

    def observe(self, features: np.ndarray, camids: np.ndarray | None) -> IdentityEstimate:
        """Estimate the edge's identities from these features.

        ``inverse_count``: once, from the first features seen, over all images (always trusted).
        ``per_camera``: every call; the edge goes by the median of its trusted estimates so far
        (an untrusted one only while none was trusted). Why not the latest alone: training on
        pseudo-labels first pushes every image away from all others (round 1 trains each image as
        its own identity), so an edge's near-duplicates can stand apart in the received model's
        features and no longer after training (cuhk03: trusted and within 1% on the ImageNet
        features, untrusted after three rounds), or the other way round (VIPeR, PRID2011); and
        once trusted, later rounds' features fit the edge's own pseudo-labels and the count
        drifts with them (demo airport: 34 after round 1, 45 after round 6, for 35 people).
        """
        if self.config.estimator == "inverse_count":
            if self.estimate is None:
                self.estimate = IdentityEstimate(estimate_num_identities(features, camids), True)
            return self.estimate
        new = estimate_identities(features, camids)
        if new.trusted:
            self.trusted_counts.append(new.count)
            self.estimate = trusted_median(self.trusted_counts, new)
        elif self.estimate is None or not self.estimate.trusted:
            self.estimate = new
        return self.estimate

    def target_clusters(self, features: np.ndarray | None = None, camids: np.ndarray | None = None) -> int:
        """The operator's identity count, else the estimate (from `features` when given)."""
        if self.config.num_identities is not None:
            return int(self.config.num_identities)
        if features is not None:
            self.observe(features, camids)
        if self.estimate is None:
            raise ValueError(
                "personalized clustering needs features to estimate the number of identities "
                "(or set ClusterConfig.num_identities)"
            )
        return self.estimate.count

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
        fixed = self.config.mode == "fixed"
        if not fixed:
            by_count = math.ceil(self.config.target_ratio * self.target_clusters(features, camids))
            target = max(by_count, floor)
            # an untrusted estimate steers nothing: the baseline's amount (the operator's count is trusted)
            fixed = self.config.num_identities is None and not self.estimate.trusted
            if fixed:
                logger.info("identity estimate %d not trusted (%s): merging the fixed amount",
                            self.estimate.count, self.estimate.reason)
            elif by_count < floor:
                # The count says each person holds several images a camera (cuhk03: five), so the floor,
                # not the count, ends the merging; reached in few steps its merges join people (cuhk03:
                # purity 0.65 in two steps of 25% of N, docs/results.md, 18): the baseline's pace.
                fixed = True
                logger.info("clusters for the count (%d) below the camera floor (%d): merging the fixed amount",
                            by_count, floor)
        if fixed:
            if self.num_images is None:
                raise ValueError("fixed merging needs the number of images (pass features or num_images)")
            return max(0, min(fixed_merge_amount(self.num_images, self.config.merge_percent), num_clusters - floor))
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
        est = self.estimate
        return {"num_images": self.num_images, "estimated_identities": est.count if est else None,
                "estimate_trusted": est.trusted if est else None, "trusted_counts": list(self.trusted_counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (missing keys keep their value)."""
        unknown = set(state) - set(self.STATE_KEYS)
        if unknown:
            raise ValueError(f"unknown profiler state keys: {sorted(unknown)}")
        if state.get("num_images") is not None:
            self.num_images = int(state["num_images"])
        if state.get("estimated_identities") is not None:
            self.estimate = IdentityEstimate(int(state["estimated_identities"]),
                                             bool(state.get("estimate_trusted", True)))
        if state.get("trusted_counts") is not None:
            self.trusted_counts = [int(c) for c in state["trusted_counts"]]
        elif self.estimate is not None and self.estimate.trusted:  # state written before the history was kept
            self.trusted_counts = [self.estimate.count]
