"""Cluster memory with ClusterNCE (cluster-contrast's ``ClusterMemory``, ``use_hard=False``).

One L2-normalised centroid per pseudo-identity, rebuilt from the current features after
each clustering. The loss is cross-entropy over ``f . c_k / temperature`` of the
normalised batch features; after ``backward`` each sample moves its centroid,
``c_y <- normalise(m c_y + (1 - m) f)``, one sample after the other in batch order
(cluster-contrast does it inside its autograd backward). The centroids are a buffer:
no gradient reaches them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_core.learners.batch_order import momentum_update_in_order


class ClusterMemory(nn.Module):
    """Centroids ``C`` (num_clusters, dim); ``loss`` + ``update`` per batch."""

    centroids: torch.Tensor

    def __init__(self, num_clusters: int, dim: int, temperature: float = 0.05, momentum: float = 0.2) -> None:
        super().__init__()
        if num_clusters < 1 or dim < 1:
            raise ValueError(f"need num_clusters >= 1 and dim >= 1, got {num_clusters}, {dim}")
        if temperature <= 0 or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"need temperature > 0 and momentum in [0, 1], got {temperature}, {momentum}")
        self.temperature, self.momentum = float(temperature), float(momentum)
        self.register_buffer("centroids", torch.zeros(num_clusters, dim))

    @classmethod
    def from_features(cls, features: np.ndarray, labels: np.ndarray, temperature: float = 0.05,
                      momentum: float = 0.2) -> ClusterMemory:
        """Centroids = L2-normalised mean feature of each cluster; label -1 (outlier) is left out."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(features),):
            raise ValueError(f"{len(features)} features but labels of shape {labels.shape}")
        if labels.max(initial=-1) < 0:
            raise ValueError("no cluster to build a memory from (every image is an outlier)")
        kept = labels >= 0
        feats = torch.as_tensor(np.asarray(features, dtype=np.float32)[kept])
        feats = F.normalize(feats, dim=1)
        labs = torch.as_tensor(labels[kept])
        memory = cls(int(labels.max()) + 1, feats.shape[1], temperature, momentum)
        sums = torch.zeros_like(memory.centroids).index_add_(0, labs, feats)
        if (torch.bincount(labs, minlength=memory.num_clusters) == 0).any():
            raise ValueError("labels must be 0..C-1 with every cluster present")
        memory.centroids.copy_(F.normalize(sums, dim=1))
        return memory

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])

    def _check(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        if feats.ndim != 2 or feats.shape[1] != self.centroids.shape[1]:
            raise ValueError(f"features must have shape (B, {self.centroids.shape[1]}), got {tuple(feats.shape)}")
        if labels.shape != (feats.shape[0],) or (labels.numel() and (
                int(labels.min()) < 0 or int(labels.max()) >= self.num_clusters)):
            raise ValueError(f"labels must be ({feats.shape[0]},) in [0, {self.num_clusters})")

    def loss(self, feats: torch.Tensor, labels: torch.Tensor,
             cams: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ClusterNCE of the (re-normalised) batch features; returns ``(loss, logits)`` (cams unused)."""
        self._check(feats, labels)
        logits = F.normalize(feats, dim=1) @ self.centroids.t() / self.temperature
        return F.cross_entropy(logits, labels), logits

    @torch.no_grad()
    def update(self, feats: torch.Tensor, labels: torch.Tensor, cams: torch.Tensor | None = None) -> None:
        """Momentum update in batch order (vectorised over first, second... occurrences of a label; cams unused)."""
        self._check(feats, labels)
        feats = F.normalize(feats.detach().to(self.centroids.dtype), dim=1)
        momentum_update_in_order(self.centroids, labels.to(self.centroids.device), feats, self.momentum)

    @staticmethod
    def precision(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
        """(top-1 hits against the pseudo-labels, batch size): Personalized Epoch's signal."""
        return int((logits.argmax(dim=1) == labels).sum().item()), int(labels.numel())

    def to_numpy(self) -> np.ndarray:
        return self.centroids.detach().cpu().numpy().astype(np.float32, copy=True)
