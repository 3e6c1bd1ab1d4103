"""Local epochs of cluster-contrast: cluster, rebuild the memory, one epoch of ClusterNCE; PE may stop.

The clustering itself is a callback from the learner (features of the current model ->
labels + the features to build centroids from), so this loop knows nothing of images
on disk beyond their paths and camera ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from reid_core.config.schema import CCConfig, EarlyStopConfig, ImageConfig
from reid_core.data.images import UnlabeledImageDataset, collate_skip_none
from reid_core.learners.cc.camera_memory import CameraProxyMemory
from reid_core.learners.cc.clustering import Clustering
from reid_core.learners.cc.memory import ClusterMemory
from reid_core.learners.cc.sampler import batches_per_epoch, pk_batches
from reid_core.learners.cc.transforms import cc_train_transform
from reid_core.models import ReIDNet
from reid_core.learners.epochs import EpochsResult, run_epochs
from reid_core.runtime.knn import faiss_worker_init
from reid_core.runtime.precision import loader_options

log = logging.getLogger(__name__)

# model -> (clustering, features to build the centroids from, the features clustered)
Relabel = Callable[[ReIDNet], tuple[Clustering, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CCTrainResult(EpochsResult):
    """What one round's local epochs did; `clustering`/`memory` are the last epoch's."""

    cluster_seconds: float
    clustering: Clustering | None
    memory: np.ndarray | None
    cluster_features: np.ndarray | None


def _seed(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen, np.random.default_rng(seed)


def build_memory(cc: CCConfig, features: np.ndarray, labels: np.ndarray,
                 camids: np.ndarray) -> ClusterMemory | CameraProxyMemory:
    """The memory `cc.memory` names, built from one clustering (outliers left out)."""
    if cc.memory == "camera":
        return CameraProxyMemory.from_features(features, labels, camids, temperature=cc.temperature,
                                               momentum=cc.momentum, hard_negatives=cc.hard_negatives,
                                               inter_weight=cc.inter_camera_weight)
    return ClusterMemory.from_features(features, labels, cc.temperature, cc.momentum)


def train_cc_epochs(model: ReIDNet, paths: Sequence[str], camids: np.ndarray, relabel: Relabel, *,
                    max_epochs: int, cc: CCConfig, image_cfg: ImageConfig, stop_cfg: EarlyStopConfig,
                    device: torch.device, seed: int, desc: str = "cc", amp: str = "off",
                    progress: bool = False) -> CCTrainResult:
    """Up to `max_epochs` epochs; clustering before each (`cc.cluster_every=epoch`) or the first only."""
    if len(paths) != len(camids):
        raise ValueError(f"{len(paths)} images but {len(camids)} camera ids")
    gen, rng = _seed(seed)
    dataset = UnlabeledImageDataset(paths, [0] * len(paths), cc_train_transform(
        image_cfg.height, image_cfg.width, cc.erasing, image_cfg.photometric))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=cc.lr, weight_decay=cc.weight_decay)
    dropout = model.dropout.p
    model.dropout.p = cc.dropout
    p = max(1, image_cfg.batch_size // cc.instances)
    cams_t = torch.as_tensor(np.asarray(camids, np.int64))  # the cameras never change within a round
    # What the latest clustering made: its labels, the memory built on them, the features clustered
    now: dict = {"clustering": None, "memory": None, "features": None, "labels": None, "seconds": 0.0}

    def epoch_batches(epoch: int):
        if epoch == 0 or cc.cluster_every == "epoch":
            t0 = time.perf_counter()
            clustering, centroid_feats, now["features"] = relabel(model)
            now["clustering"], now["memory"] = clustering, None
            if clustering.num_clusters > 0:
                now["memory"] = build_memory(cc, centroid_feats, clustering.labels, camids).to(device)
            now["seconds"] += time.perf_counter() - t0
            now["labels"] = torch.as_tensor(clustering.labels)
        if now["memory"] is None:
            log.warning("%s epoch %d: every image is an outlier; nothing to train on", desc, epoch + 1)
            return None
        labels = now["clustering"].labels
        # epoch_size=all: as many batches as a pass over every image (BUC's steps, whatever the outliers)
        pass_images = int((labels >= 0).sum()) if cc.epoch_size == "clustered" else len(camids)
        batches = pk_batches(labels, camids, p, cc.instances,
                             batches_per_epoch(pass_images, p * cc.instances, cc.iters), rng)
        return DataLoader(dataset, batch_sampler=[b.tolist() for b in batches],
                          num_workers=image_cfg.num_workers, worker_init_fn=faiss_worker_init,
                          collate_fn=collate_skip_none, generator=gen,
                          **loader_options(device, image_cfg.num_workers))

    def objective(embedding: torch.Tensor, _loaded: torch.Tensor, index: torch.Tensor):
        memory = now["memory"]
        targets, cams = now["labels"][index].to(device), cams_t[index].to(device)
        loss, logits = memory.loss(embedding, targets, cams)

        def after_step():
            memory.update(embedding.detach(), targets, cams)
            return memory.precision(logits.detach(), targets)
        return loss, after_step

    def epoch_done(epoch: int, loss: float, precision: float) -> None:
        clustering = now["clustering"]
        log.info("%s epoch %d: %d clusters, %d outliers, loss %.3f, precision %.3f", desc, epoch + 1,
                 clustering.num_clusters, clustering.outliers, loss, precision)

    result = run_epochs(model, optimizer, epoch_batches=epoch_batches, objective=objective,
                        max_epochs=max_epochs, stop_cfg=stop_cfg, amp=amp, device=device, progress=progress,
                        desc=desc, epoch_done=epoch_done)
    model.dropout.p = dropout
    memory = now["memory"]
    return CCTrainResult(**result.__dict__, cluster_seconds=now["seconds"], clustering=now["clustering"],
                         memory=memory.to_numpy() if memory is not None else None,
                         cluster_features=now["features"])
