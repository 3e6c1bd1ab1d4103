"""Camera-aware proxies (CAP-style, Wang et al., AAAI 2021) for `learner=cc` (`cc.memory: camera`).

A pseudo-identity seen by two cameras gets two proxies, one per camera: the mean of its
images from that camera. Two losses per image:

- intra-camera: cross-entropy over the proxies of the image's own camera only, target its
  own proxy (telling people apart without the camera's look doing the work);
- inter-camera: every proxy of the image's pseudo-identity (all cameras) is a positive
  against the ``hard_negatives`` most similar proxies of other pseudo-identities, averaged
  over the positives (this term pulls one person's cameras together).

loss = intra + ``inter_weight`` x inter. After ``backward`` each image moves its own proxy
(momentum, batch order), as :class:`reid_core.learners.cc.memory.ClusterMemory` moves
its centroid. Camera ids are what an edge knows; no identities are read.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_core.learners.batch_order import momentum_update_in_order


class CameraProxyMemory(nn.Module):
    """Proxies (P, dim), one per (pseudo-identity, camera) present; ``loss`` + ``update`` per batch."""

    proxies: torch.Tensor
    proxy_cluster: torch.Tensor
    lookup: torch.Tensor

    def __init__(self, proxy_cluster: np.ndarray, proxy_camera: np.ndarray, num_cameras: int, dim: int, *,
                 temperature: float = 0.05, momentum: float = 0.2, hard_negatives: int = 50,
                 inter_weight: float = 0.5) -> None:
        super().__init__()
        proxy_cluster, proxy_camera = np.asarray(proxy_cluster, np.int64), np.asarray(proxy_camera, np.int64)
        if len(proxy_cluster) < 1 or proxy_cluster.shape != proxy_camera.shape or dim < 1:
            raise ValueError("need at least one proxy, one cluster and one camera per proxy, and dim >= 1")
        if temperature <= 0 or not 0.0 <= momentum <= 1.0 or hard_negatives < 1 or inter_weight < 0:
            raise ValueError(f"need temperature > 0, momentum in [0, 1], hard_negatives >= 1 and inter_weight >= 0, "
                             f"got {temperature}, {momentum}, {hard_negatives}, {inter_weight}")
        self.temperature, self.momentum = float(temperature), float(momentum)
        self.hard_negatives, self.inter_weight = int(hard_negatives), float(inter_weight)
        lookup = np.full((int(proxy_cluster.max()) + 1, num_cameras), -1, np.int64)
        lookup[proxy_cluster, proxy_camera] = np.arange(len(proxy_cluster))
        self.register_buffer("proxies", torch.zeros(len(proxy_cluster), dim))
        self.register_buffer("proxy_cluster", torch.as_tensor(proxy_cluster))
        self.register_buffer("proxy_camera", torch.as_tensor(proxy_camera))
        self.register_buffer("lookup", torch.as_tensor(lookup))

    @classmethod
    def from_features(cls, features: np.ndarray, labels: np.ndarray, camids: np.ndarray,
                      **kwargs: float) -> CameraProxyMemory:
        """Proxy = L2-normalised mean feature of a cluster's images from one camera; -1 (outlier) left out."""
        labels, camids = np.asarray(labels, np.int64), np.asarray(camids, np.int64)
        if labels.shape != (len(features),) or camids.shape != (len(features),):
            raise ValueError(f"{len(features)} features but labels {labels.shape} and camids {camids.shape}")
        if labels.max(initial=-1) < 0:
            raise ValueError("no cluster to build a memory from (every image is an outlier)")
        if camids.min() < 0:
            raise ValueError("camera ids must be >= 0")
        kept = labels >= 0
        num_cameras = int(camids.max()) + 1
        pair = labels[kept] * num_cameras + camids[kept]
        keys, proxy_of_image = np.unique(pair, return_inverse=True)
        memory = cls(keys // num_cameras, keys % num_cameras, num_cameras, features.shape[1], **kwargs)
        feats = F.normalize(torch.as_tensor(np.asarray(features, np.float32)[kept]), dim=1)
        sums = torch.zeros_like(memory.proxies).index_add_(0, torch.as_tensor(proxy_of_image), feats)
        memory.proxies.copy_(F.normalize(sums, dim=1))
        return memory

    @property
    def num_proxies(self) -> int:
        return int(self.proxies.shape[0])

    def proxy_ids(self, labels: torch.Tensor, cams: torch.Tensor) -> torch.Tensor:
        """Each image's own proxy; an error when a (cluster, camera) pair has none."""
        if labels.shape != cams.shape:
            raise ValueError(f"labels {tuple(labels.shape)} and cams {tuple(cams.shape)} differ in shape")
        c, k = self.lookup.shape
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= c or int(cams.min()) < 0
                               or int(cams.max()) >= k):
            raise ValueError(f"labels must be in [0, {c}) and cameras in [0, {k})")
        ids = self.lookup[labels, cams]
        if (ids < 0).any():
            raise ValueError("an image's (pseudo-identity, camera) has no proxy: rebuild the memory after clustering")
        return ids

    def loss(self, feats: torch.Tensor, labels: torch.Tensor,
             cams: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """intra + inter_weight x inter (module doc); returns ``(loss, logits over the proxies)``."""
        if cams is None:
            raise ValueError("camera-aware proxies need each image's camera id")
        if feats.ndim != 2 or feats.shape[1] != self.proxies.shape[1]:
            raise ValueError(f"features must have shape (B, {self.proxies.shape[1]}), got {tuple(feats.shape)}")
        labels, cams = labels.to(self.lookup.device), cams.to(self.lookup.device)
        own = self.proxy_ids(labels, cams)
        logits = F.normalize(feats, dim=1) @ self.proxies.t() / self.temperature
        other_camera = self.proxy_camera[None, :] != cams[:, None]
        intra = F.cross_entropy(logits.masked_fill(other_camera, float("-inf")), own)
        positive = self.proxy_cluster[None, :] == labels[:, None]
        negatives = logits.masked_fill(positive, float("-inf"))
        k = min(self.hard_negatives, self.num_proxies)
        hard = torch.zeros_like(positive)
        top = negatives.topk(k, dim=1).indices
        hard.scatter_(1, top, torch.isfinite(negatives.gather(1, top)))
        log_prob = logits - logits.masked_fill(~(positive | hard), float("-inf")).logsumexp(dim=1, keepdim=True)
        inter = -(log_prob * positive).sum(dim=1) / positive.sum(dim=1)
        return intra + self.inter_weight * inter.mean(), logits

    @torch.no_grad()
    def update(self, feats: torch.Tensor, labels: torch.Tensor, cams: torch.Tensor | None = None) -> None:
        """Momentum update of each image's own proxy, in batch order."""
        if cams is None:
            raise ValueError("camera-aware proxies need each image's camera id")
        ids = self.proxy_ids(labels.to(self.lookup.device), cams.to(self.lookup.device))
        feats = F.normalize(feats.detach().to(self.proxies.dtype), dim=1)
        momentum_update_in_order(self.proxies, ids, feats, self.momentum)

    def precision(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
        """(images whose most similar proxy belongs to their pseudo-identity, batch size): PE's signal."""
        predicted = self.proxy_cluster[logits.argmax(dim=1)]
        return int((predicted == labels.to(predicted.device)).sum().item()), int(labels.numel())

    def to_numpy(self) -> np.ndarray:
        return self.proxies.detach().cpu().numpy().astype(np.float32, copy=True)
