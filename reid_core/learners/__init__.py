"""Edge learners: one client's local unsupervised learning, chosen with `learner=` in the config.

Every learner implements `reid_core.learners.base.EdgeLearner`; the ClientApp and
standalone training only call `make_learner`.
"""

from __future__ import annotations

import logging

from reid_core.config.choices import LEARNER_CHOICES, LEARNERS
from reid_core.config.settings import Settings
from reid_core.learners.base import EdgeLearner, LearnerConfig, NoUsableData
from reid_core.learners.cc.clustering import LARGE_EDGE_IMAGES

log = logging.getLogger(__name__)

# learner=auto: cluster-contrast from this many training images up, BUC below: cc's own split of
# a large edge (its min_samples default). cc's DBSCAN needs a few images of a person to form a
# cluster; alone, cc leads on cuhk03 (4,104 images) and BUC on VIPeR, PRID2011 and i-LIDS (200-632
# images, ~2 a person) on the CPU schedule (docs/results.md, learner=auto).
AUTO_CC_MIN_IMAGES = LARGE_EDGE_IMAGES


def choose_learner(num_train_images: int) -> str:
    """learner=auto's pick for an edge with `num_train_images` training images (no labels needed)."""
    return "cc" if num_train_images >= AUTO_CC_MIN_IMAGES else "buc"


def make_learner(kind: str, name: str, data_dir: str, cfg: LearnerConfig, state_dir: str) -> EdgeLearner:
    """The learner `kind` for client `name` (its images in `data_dir`, its state in `state_dir`)."""
    if kind == "auto":
        from reid_core.data import read_reid_root

        count = len(read_reid_root(data_dir).train)
        kind = choose_learner(count)
        log.info("%s: learner=auto picks %s (%d training images; cc from %d)", name, kind, count, AUTO_CC_MIN_IMAGES)
    if kind == "buc":
        from reid_core.learners.buc.learner import BUCLearner

        return BUCLearner(name, data_dir, cfg, state_dir)
    if kind == "cc":
        from reid_core.learners.cc.learner import CCLearner

        return CCLearner(name, data_dir, cfg, state_dir)
    raise ValueError(f"unknown learner '{kind}' (key 'learner'); choose one of {LEARNER_CHOICES}")


def learner_from_settings(settings: Settings, name: str, data_dir: str, state_dir: str,
                          kind: str | None = None) -> EdgeLearner:
    """The configured learner of client `name` (`kind` if given, e.g. from a node_config), with its
    operator-known #identities if any."""
    cfg = LearnerConfig(model=settings.model, image=settings.image, train=settings.train,
                        early_stop=settings.early_stop, cluster=settings.cluster_for(name),
                        total_rounds=settings.rounds, cc=settings.cc_for(name))
    return make_learner(kind or settings.learner_of(name), name, data_dir, cfg, state_dir)


__all__ = ["EdgeLearner", "LearnerConfig", "NoUsableData", "LEARNERS", "LEARNER_CHOICES", "AUTO_CC_MIN_IMAGES",
           "choose_learner", "learner_from_settings", "make_learner"]
