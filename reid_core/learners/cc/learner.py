"""Cluster-contrast at the edge (`learner=cc`): one federated round of local epochs.

Round 1 trains `train.first_round_epochs` epochs, later rounds up to `train.epochs`
(Personalized Epoch may stop them early, from round 2 on, as for BUC). Before each epoch
the edge clusters its current features (Jaccard + DBSCAN, min_samples by edge size:
see :mod:`reid_core.learners.cc.clustering`) and rebuilds the cluster memory. The last
clustering's labels (-1 = outlier) and memory stay in the edge's state folder; only the
model's arrays and scalar metrics leave.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from reid_core.config.schema import EarlyStopConfig
from reid_core.learners.base import EdgeLearner, LocalStep
from reid_core.learners.cc.clustering import Clustering, auto_min_samples, cluster_features
from reid_core.learners.cc.trainer import train_cc_epochs
from reid_core.models import ReIDNet

log = logging.getLogger(__name__)


def outliers_as_singletons(labels: np.ndarray) -> np.ndarray:
    """Labels 0..C-1 with each outlier (-1) its own cluster (how the diagnostics count them)."""
    out = np.asarray(labels, dtype=np.int64).copy()
    noise = out < 0
    out[noise] = out.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return out


class CCLearner(EdgeLearner):
    """Cluster-contrast learner of one client; its local step is epochs of cluster, memory, ClusterNCE."""

    KIND = "cc"

    def _fresh_state(self) -> None:
        super()._fresh_state()
        self.labels = np.full(len(self.paths), -1, dtype=np.int64)  # no clustering yet

    def _state_meta(self) -> dict[str, Any]:
        return {**super()._state_meta(), "min_samples": self.min_samples}

    @property
    def min_samples(self) -> int:
        cc = self.cfg.cc
        return cc.min_samples or auto_min_samples(len(self.paths), self.cfg.cluster.num_identities)

    def _relabel(self, model: ReIDNet) -> tuple[Clustering, np.ndarray, np.ndarray]:
        """Cluster the current features; the centroids live in the trained embedding's space."""
        cc, which = self.cfg.cc, self.cfg.cluster.feature
        feats = self._features(model, which)
        embed = feats if which == "embed" or model.embed is None else self._features(model, "embed")
        clustering = cluster_features(feats, k1=cc.k1, k2=cc.k2, eps=cc.eps, min_samples=self.min_samples,
                                      camids=self._camids(), camera_means=cc.camera_means,
                                      camera_penalty=cc.camera_penalty)
        return clustering, embed, feats

    def _local_step(self, model: ReIDNet, server_round: int, total_rounds: int) -> LocalStep:
        """Local epochs with clustering before each; the last clustering is the edge's pseudo-labels."""
        tc = self.cfg.train
        first = self.round == 0
        result = train_cc_epochs(
            model, self.paths, self._camids(), self._relabel,
            max_epochs=tc.first_round_epochs if first else tc.epochs, cc=self.cfg.cc, image_cfg=self.cfg.image,
            stop_cfg=EarlyStopConfig(rule="none") if first else self.cfg.early_stop, device=self.device,
            seed=tc.seed * 1000 + server_round, desc=f"{self.name} r{server_round}", amp=tc.amp,
            progress=tc.progress)
        clustering = result.clustering
        self.labels = clustering.labels.astype(np.int64)
        self.memory = result.memory
        # DBSCAN reclusters from scratch: nothing is merged
        return LocalStep(trained=result, clusters_trained=clustering.num_clusters,
                         diagnostic_labels=outliers_as_singletons(self.labels), features=result.cluster_features,
                         seconds_cluster=result.cluster_seconds,
                         extra={"outliers": clustering.outliers, "min-samples": clustering.min_samples})
