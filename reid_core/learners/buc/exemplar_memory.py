"""Exemplar memory (BUC's repelled loss): one L2-normalised slot per pseudo-label cluster.

The memory is a buffer, not a parameter: the loss back-propagates into the
embeddings only, and the memory moves by BUC's running-average rule, applied by
an explicit ``update`` call after ``backward`` (BUC did it inside the backward of
its ``Exclusive`` autograd function, after computing the gradient with the old V).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_core.learners.batch_order import occurrence as batch_occurrence

logger = logging.getLogger(__name__)


def precision(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Count top-1 hits of memory logits against pseudo-labels.

    Returns
    -------
    tuple of int
        ``(correct, size)``; precision = correct / size (PE's stop signal).
    """
    correct = int((logits.argmax(dim=1) == labels).sum().item())
    return correct, int(labels.numel())


class ExemplarMemory(nn.Module):
    """Cluster memory ``V`` of shape (num_clusters, dim) scored by cosine / temperature.

    Parameters
    ----------
    num_clusters : int
        Number of pseudo-label clusters C (labels are 0 .. C-1).
    dim : int
        Embedding size d.
    temperature : float
        Softmax temperature tau; BUC uses 0.1 (logits scaled by t = 10).

    Notes
    -----
    Use: ``loss, logits = memory.loss(emb, y); loss.backward(); opt.step();
    memory.update(emb.detach(), y)``. Calling ``update`` before ``backward``
    fails loudly, because autograd saved the old V for the gradient.
    """

    V: torch.Tensor

    def __init__(self, num_clusters: int, dim: int, temperature: float = 0.1) -> None:
        super().__init__()
        if num_clusters < 1 or dim < 1:
            raise ValueError(f"need num_clusters >= 1 and dim >= 1, got {num_clusters}, {dim}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.register_buffer("V", torch.zeros(num_clusters, dim))

    precision = staticmethod(precision)

    @property
    def num_clusters(self) -> int:
        """Number of memory slots C."""
        return int(self.V.shape[0])

    @property
    def dim(self) -> int:
        """Size d of each slot."""
        return int(self.V.shape[1])

    def _check(self, emb: torch.Tensor, labels: torch.Tensor) -> None:
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape (B, {self.dim}), got {tuple(emb.shape)}")
        if labels.shape != (emb.shape[0],):
            raise ValueError(f"labels must have shape ({emb.shape[0]},), got {tuple(labels.shape)}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_clusters):
            raise ValueError(
                f"labels must lie in [0, {self.num_clusters}), got range "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """Score embeddings (B, d) against every slot: ``emb @ V.T / temperature``."""
        return emb @ self.V.t() / self.temperature

    def loss(self, emb: torch.Tensor, labels: torch.Tensor, partner_labels: torch.Tensor | None = None,
             partner_weight: float = 0.0, check: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy over clusters; returns ``(loss, logits)``. No gradient reaches V.

        With ``partner_labels`` (a second cluster per sample, -1 for none) and
        ``partner_weight`` w, a sample with a partner has the soft target
        (1 - w) on its own cluster and w on its partner's: a weak positive.
        ``check=False`` skips the label-range check (a device sync per call), for a
        caller that validated the labels once (the trainer).
        """
        if check:
            self._check(emb, labels)
        logits = self.logits(emb)
        own = F.cross_entropy(logits, labels, reduction="none")
        if partner_labels is None or partner_weight <= 0.0:
            return own.mean(), logits
        if partner_labels.shape != labels.shape:
            raise ValueError(f"partner_labels must have shape {tuple(labels.shape)}, got {tuple(partner_labels.shape)}")
        has = partner_labels >= 0
        other = F.cross_entropy(logits, partner_labels.clamp(min=0), reduction="none")
        mixed = torch.where(has, (1.0 - partner_weight) * own + partner_weight * other, own)
        return mixed.mean(), logits

    @torch.no_grad()
    def update(self, emb: torch.Tensor, labels: torch.Tensor, check: bool = True) -> None:
        """Move each labelled slot halfway to its sample: ``V[y] <- normalize((V[y] + v) / 2)``.

        Same result as BUC's per-sample loop in batch order. Vectorised in rounds:
        round k applies the k-th occurrence of every label in the batch at once, so
        a label seen twice is updated twice, in order (the number of rounds is the
        largest multiplicity in the batch, usually 1-2). ``check`` as in ``loss``.
        """
        if check:
            self._check(emb, labels)
        emb = emb.detach().to(self.V.dtype)
        labels = labels.to(self.V.device)
        occurrence = batch_occurrence(labels)  # k-th time this label appears in the batch
        for k in range(int(occurrence.max()) + 1 if len(labels) else 0):
            pick = occurrence == k
            slots = labels[pick]
            self.V[slots] = F.normalize((self.V[slots] + emb[pick]) / 2, dim=1)

    @torch.no_grad()
    def init_zeros(self) -> None:
        """Reset every slot to zero (the paper's initialisation after each relabel)."""
        self.V.zero_()

    @torch.no_grad()
    def init_from_features(self, features: np.ndarray | torch.Tensor,
                           labels: np.ndarray | torch.Tensor) -> None:
        """Set each slot to the L2-normalised mean feature of its cluster.

        Parameters
        ----------
        features : array, shape (N, d)
            Current features of the training images (e.g. eval-mode embeddings).
        labels : array of int, shape (N,)
            Pseudo-labels in [0, C). Clusters without any sample stay zero (logged).
        """
        feats = torch.as_tensor(features).to(self.V.device, self.V.dtype)
        labs = torch.as_tensor(labels).to(self.V.device, torch.long)
        self._check(feats, labs)
        sums = torch.zeros_like(self.V).index_add_(0, labs, feats)
        counts = torch.bincount(labs, minlength=self.num_clusters)
        empty = int((counts == 0).sum())
        if empty:
            logger.warning("init_from_features: %d of %d clusters have no sample; left at zero",
                           empty, self.num_clusters)
        self.V.copy_(F.normalize(sums, dim=1))  # dividing by the count is moot after normalize

    def to_numpy(self) -> np.ndarray:
        """Copy of the memory as a float32 array (C, d), for persisting on the edge."""
        return self.V.detach().cpu().numpy().astype(np.float32, copy=True)

    @classmethod
    def from_numpy(cls, memory: np.ndarray, temperature: float = 0.1) -> ExemplarMemory:
        """Rebuild a memory (on CPU) from an array written by ``to_numpy``."""
        memory = np.asarray(memory)
        if memory.ndim != 2:
            raise ValueError(f"memory array must be 2-D (C, d), got shape {memory.shape}")
        if not np.isfinite(memory).all():
            raise ValueError("memory array holds NaN or inf")
        instance = cls(memory.shape[0], memory.shape[1], temperature)
        instance.V.copy_(torch.from_numpy(memory.astype(np.float32)))
        return instance
