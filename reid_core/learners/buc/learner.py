"""BUC at the edge: exemplar-memory training on pseudo-labels, then a bottom-up merge.

The paper's local learner (Lin et al., AAAI 2019, as used by FedUReID). Each round
trains on the current clusters (round 1: every image its own cluster), then merges
as many clusters as Personalized Clustering asks; Personalized Epoch may stop the
local epochs early.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import numpy as np

from reid_core.config.schema import EarlyStopConfig
from reid_core.features import remove_camera_means
from reid_core.learners.base import EdgeLearner, LocalStep
from reid_core.learners.buc.exemplar_memory import ExemplarMemory
from reid_core.learners.buc.merge import buc_merge
from reid_core.learners.buc.trainer import train_epochs
from reid_core.learners.camera import cross_camera_partners
from reid_core.models import ReIDNet
from reid_core.personalization.personalized_clustering import Profiler

log = logging.getLogger(__name__)


class BUCLearner(EdgeLearner):
    """BUC learner of one client; its local step is the exemplar-memory epochs, then a merge."""

    KIND = "buc"

    def _fresh_state(self) -> None:
        super()._fresh_state()
        self.profiler = Profiler(self.cfg.cluster, total_merge_steps=max(self.cfg.total_rounds - 1, 1))

    def _state_meta(self) -> dict[str, Any]:
        return {**super()._state_meta(), "profiler": self.profiler.state_dict()}

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        super()._restore(arrays, meta)
        self.profiler.load_state_dict(meta.get("profiler", {}))

    def _cluster_features(self, model: ReIDNet, camids: np.ndarray) -> np.ndarray:
        """The features the merge (and the identity estimate) sees."""
        feats = self._features(model, self.cfg.cluster.feature)
        return remove_camera_means(feats, camids) if self.cfg.cluster.camera_normalize else feats

    def _local_step(self, model: ReIDNet, server_round: int, total_rounds: int) -> LocalStep:
        """Train on the current clusters, then merge as many as Personalized Clustering asks."""
        tc = self.cfg.train
        first = self.round == 0
        clusters_trained = self.num_clusters
        memory = ExemplarMemory(self.num_clusters, model.embed_dim_out, tc.temperature)
        embed = None
        if tc.memory_init == "mean" or tc.cross_camera_weight > 0:
            embed = self._features(model, "embed")
        if tc.memory_init == "mean":
            memory.init_from_features(embed, self.labels)
        camids = self._camids()
        if first and self.profiler.wants_received_features:  # the received model's features, before training pushes duplicates apart
            self.profiler.observe(self._cluster_features(model, camids), camids)
        partners = None
        if tc.cross_camera_weight > 0:  # camera ids only: each image's nearest other-camera image
            partners = cross_camera_partners(embed, camids, mutual=tc.cross_camera_mutual)
        # the paper's PE applies after the instance-level first stage
        stop_cfg = EarlyStopConfig(rule="none") if first else self.cfg.early_stop
        result = train_epochs(
            model, self.paths, self.labels, memory,
            lr=tc.first_round_lr if first else tc.lr,
            max_epochs=tc.first_round_epochs if first else tc.epochs,
            train_cfg=tc, image_cfg=self.cfg.image, stop_cfg=stop_cfg, device=self.device,
            seed=tc.seed * 1000 + server_round, desc=f"{self.name} r{server_round}", partners=partners,
        )
        merged, feats, merge_stats, t_cluster = 0, None, {}, 0.0
        last = server_round >= total_rounds  # no merge after the last round's training
        # per_camera estimates again on the last round's features (reported); inverse_count keeps its one estimate
        if not last or self.profiler.wants_received_features:
            t1 = time.time()
            feats = self._cluster_features(model, camids)
            if last:  # the last round's estimate, reported beside the true count
                self.profiler.observe(feats, camids)
            else:
                merged = self.profiler.num_merge(server_round - 1, self.num_clusters, features=feats, camids=camids)
                merged = min(merged, self.num_clusters - 1)
            if merged > 0:
                self.labels = buc_merge(feats, self.labels, merged, self.cfg.cluster.lam,
                                        stats=merge_stats).astype(np.int64)
            t_cluster = time.time() - t1
        extra = {}
        if self.profiler.estimate is not None:
            extra["identities-estimate"] = self.profiler.estimate.count
            if self.profiler.wants_received_features:  # per_camera judges its estimate; inverse_count cannot
                extra["identities-estimate-trusted"] = int(self.profiler.estimate.trusted)
        self.memory = memory.to_numpy()
        return LocalStep(trained=result, clusters_trained=clusters_trained, diagnostic_labels=self.labels,
                         features=feats, merge_pairs=merge_stats.get("merge_pairs"), merged=merged,
                         seconds_cluster=t_cluster, extra=extra)
