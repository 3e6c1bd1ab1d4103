"""Edge learners: one client's local unsupervised learning, chosen with `learner=` in the config.

Every learner implements `reid_core.learners.base.EdgeLearner`; the ClientApp and
standalone training only call `make_learner`.
"""

from __future__ import annotations

from reid_core.config.settings import Settings
from reid_core.learners.base import EdgeLearner, LearnerConfig, NoUsableData

LEARNERS = ("buc", "cc")


def make_learner(kind: str, name: str, data_dir: str, cfg: LearnerConfig, state_dir: str) -> EdgeLearner:
    """The learner `kind` for client `name` (its images in `data_dir`, its state in `state_dir`)."""
    if kind == "buc":
        from reid_core.learners.buc.learner import BUCLearner

        return BUCLearner(name, data_dir, cfg, state_dir)
    if kind == "cc":
        from reid_core.learners.cc.learner import CCLearner

        return CCLearner(name, data_dir, cfg, state_dir)
    raise ValueError(f"unknown learner '{kind}' (key 'learner'); choose one of {LEARNERS}")


def learner_from_settings(settings: Settings, name: str, data_dir: str, state_dir: str,
                          kind: str | None = None) -> EdgeLearner:
    """The configured learner of client `name` (`kind` if given, e.g. from a node_config), with its
    operator-known #identities if any."""
    cfg = LearnerConfig(model=settings.model, image=settings.image, train=settings.train,
                        early_stop=settings.early_stop, cluster=settings.cluster_for(name),
                        total_rounds=settings.rounds, cc=settings.cc_for(name))
    return make_learner(kind or settings.learner_of(name), name, data_dir, cfg, state_dir)


__all__ = ["EdgeLearner", "LearnerConfig", "NoUsableData", "LEARNERS", "learner_from_settings", "make_learner"]
