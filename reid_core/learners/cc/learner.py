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
import time
from typing import Any, Mapping

import numpy as np

from reid_core.config.schema import EarlyStopConfig
from reid_core.eval.pseudo_labels import round_diagnostics
from reid_core.learners.base import EdgeLearner
from reid_core.learners.cc.clustering import Clustering, auto_min_samples, cluster_features
from reid_core.learners.cc.trainer import train_cc_epochs
from reid_core.models import ReIDNet
from reid_core.runtime.arrays import model_arrays

log = logging.getLogger(__name__)


def outliers_as_singletons(labels: np.ndarray) -> np.ndarray:
    """Labels 0..C-1 with each outlier (-1) its own cluster (how the diagnostics count them)."""
    out = np.asarray(labels, dtype=np.int64).copy()
    noise = out < 0
    out[noise] = out.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return out


class CCLearner(EdgeLearner):
    """Cluster-contrast learner of one client; `train_round` is one federated round."""

    KIND = "cc"

    def _fresh_state(self) -> None:
        super()._fresh_state()
        self.labels = np.full(len(self.paths), -1, dtype=np.int64)  # no clustering yet
        self.memory: np.ndarray | None = None

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._state_arrays(), "memory": self.memory if self.memory is not None else np.zeros(0)}

    def _state_meta(self) -> dict[str, Any]:
        return {**super()._state_meta(), "min_samples": self.min_samples}

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        super()._restore(arrays, meta)
        self.memory = arrays["memory"] if arrays["memory"].size else None

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

    def train_round(self, arrays: Mapping[str, np.ndarray] | None, server_round: int,
                    total_rounds: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Local epochs with clustering before each; return model + scalar metrics (BUC's keys)."""
        self.start_round(server_round)
        t0 = time.time()
        model = self.build(arrays)
        tc = self.cfg.train
        first = self.round == 0
        camids = self._camids()
        result = train_cc_epochs(
            model, self.paths, camids, self._relabel,
            max_epochs=tc.first_round_epochs if first else tc.epochs, cc=self.cfg.cc, image_cfg=self.cfg.image,
            stop_cfg=EarlyStopConfig(rule="none") if first else self.cfg.early_stop, device=self.device,
            seed=tc.seed * 1000 + server_round, desc=f"{self.name} r{server_round}")
        t_compute = time.time() - t0
        clustering = result.clustering
        self.labels = clustering.labels.astype(np.int64)
        self.memory = result.memory
        t2 = time.time()  # after the labels are chosen: the identities cannot steer them
        diagnostics = round_diagnostics(outliers_as_singletons(self.labels), self._identities(),
                                        features=result.cluster_features, camids=camids)
        t_diag = time.time() - t2
        self.round = server_round
        out = model_arrays(model)
        self._save_local_model(out)
        self.save_state()
        metrics = {
            "num-examples": len(self.paths),
            "train-loss": float(result.loss),
            "precision": float(result.precision),
            "epochs": int(result.epochs),
            "stopped-early": int(result.stopped_early),
            "clusters-trained": clustering.num_clusters,
            "clusters": self.num_clusters,
            "merged": 0,  # DBSCAN reclusters from scratch; nothing is merged
            "outliers": clustering.outliers,
            "min-samples": clustering.min_samples,
            "skipped-images": len(self.skipped),
            "time-train": round(t_compute - result.cluster_seconds, 3),
            "time-cluster": round(result.cluster_seconds, 3),
            "time-diagnostics": round(t_diag, 3),
            "time-compute": round(t_compute, 3),
            **diagnostics,
        }
        log.info("%s round %d: %s", self.name, server_round, metrics)
        return out, metrics
