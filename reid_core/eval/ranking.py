"""Retrieval metrics: Market-1501 CMC (rank-k) and mAP, and the distance matrix they rank by."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from reid_core.config.schema import ImageConfig
from reid_core.features import extract_features

logger = logging.getLogger(__name__)

RANKS_REPORTED = (1, 5, 10)
EVAL_CHUNK_ROWS = 256  # queries per block: bounds the (rows, gallery) int64 temporaries


class Sample(Protocol):
    """What evaluation needs from a sample (``reid_core.data.market.ReIDSample``)."""

    path: str
    pid: int
    camid: int


def _as_ids(values: np.ndarray | Sequence[int], name: str, length: int) -> np.ndarray:
    ids = np.asarray(values)
    if ids.ndim != 1 or len(ids) != length:
        raise ValueError(f"{name} must be 1-D of length {length}, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {ids.dtype}")
    return ids.astype(np.int64, copy=False)


def _true_match_table(q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                      g_camids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the gallery indices of its pid padded to a common width, and which count.

    Returns ``(index, is_match)`` of shape (Q, M): a true match has the query's pid
    and another camera; same pid + same camera is dropped (Market protocol).
    """
    order = np.argsort(g_pids, kind="stable")
    pids, start, size = np.unique(g_pids[order], return_index=True, return_counts=True)
    group = np.minimum(np.searchsorted(pids, q_pids), len(pids) - 1)
    count = np.where(pids[group] == q_pids, size[group], 0)
    cols = np.arange(max(int(count.max()), 1))
    in_group = cols[None, :] < count[:, None]
    index = order[np.where(in_group, start[group][:, None] + cols[None, :], 0)]
    return index, in_group & (g_camids[index] != q_camids[:, None])


def evaluate_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                  q_camids: np.ndarray, g_camids: np.ndarray,
                  max_rank: int = 50) -> tuple[np.ndarray, float]:
    """Compute CMC and mAP with the Market-1501 protocol (torchreid's ``eval_market1501``).

    For each query, gallery entries with its pid AND camid are ignored; a query
    left without a true match is skipped. AP is the mean precision at the rank of
    each true match. Nothing is sorted: the rank of the k-th closest true match is
    k plus the number of other-pid gallery entries at a distance <= its own,
    counted with a batched ``searchsorted``. Ties between a true match and a
    non-match rank the non-match first (pessimistic; a collapsed model whose
    distances are all equal scores worst, not best).

    Parameters
    ----------
    distmat : np.ndarray, shape (num_query, num_gallery)
        Distances (smaller = more similar); must be finite.
    q_pids, q_camids : np.ndarray of int, shape (num_query,)
    g_pids, g_camids : np.ndarray of int, shape (num_gallery,)
        pid 0 (Market distractors) is an ordinary non-matching id; junk (-1)
        should already be dropped by the reader.
    max_rank : int
        Length of the CMC curve. If the gallery is smaller, it is cut to the
        gallery size (with a warning), as torchreid does.

    Returns
    -------
    cmc : np.ndarray of float64, shape (max_rank,)
        cmc[r] = fraction of valid queries with a true match within the top r+1.
    mAP : float
        Mean average precision over valid queries, as a fraction.

    Raises
    ------
    ValueError
        Bad shapes, non-integer ids, non-finite distances, or no valid query.
    """
    distmat = np.ascontiguousarray(distmat)
    if distmat.ndim != 2 or 0 in distmat.shape:
        raise ValueError(f"distmat must be a non-empty 2-D array, got shape {distmat.shape}")
    if distmat.dtype not in (np.float32, np.float64):
        distmat = distmat.astype(np.float64)
    num_q, num_g = distmat.shape
    q_pids, q_camids = _as_ids(q_pids, "q_pids", num_q), _as_ids(q_camids, "q_camids", num_q)
    g_pids, g_camids = _as_ids(g_pids, "g_pids", num_g), _as_ids(g_camids, "g_camids", num_g)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if num_g < max_rank:
        logger.warning("gallery has %d images < max_rank %d: CMC cut to %d ranks",
                       num_g, max_rank, num_g)
        max_rank = num_g

    # Sorted distances of each query's true matches, +inf as padding.
    index, is_match = _true_match_table(q_pids, g_pids, q_camids, g_camids)
    match_dist = np.sort(np.where(is_match, np.take_along_axis(distmat, index, 1), np.inf), 1)
    num_matches = is_match.sum(1)
    valid = num_matches > 0
    if not valid.any():
        raise ValueError(
            f"no query (of {num_q}) has a true match in the gallery: each needs a gallery "
            "image of its pid from another camera"
        )

    width = match_dist.shape[1]
    kth = torch.arange(width)
    first_rank = np.zeros(num_q, dtype=np.int64)
    average_precision = np.zeros(num_q, dtype=np.float64)
    g_pids_t = torch.from_numpy(g_pids)
    for lo in range(0, num_q, EVAL_CHUNK_ROWS):
        hi = min(lo + EVAL_CHUNK_ROWS, num_q)
        dist = torch.from_numpy(distmat[lo:hi])
        if not torch.isfinite(dist).all():
            raise ValueError("distmat holds NaN or inf (features of images that failed to load?)")
        is_negative = g_pids_t[None, :] != torch.from_numpy(q_pids[lo:hi])[:, None]
        # Bin b of a non-match = number of true matches strictly closer, so it ranks
        # before matches b, b+1, ...; same-pid entries go to the last bin (ignored).
        neg_dist = torch.where(is_negative, dist, torch.tensor(torch.inf, dtype=dist.dtype))
        bins = torch.searchsorted(torch.from_numpy(match_dist[lo:hi]), neg_dist)
        per_bin = torch.zeros(hi - lo, width + 1, dtype=torch.int64)
        per_bin.scatter_add_(1, bins, torch.ones(1, dtype=torch.int64).expand_as(bins))
        rank = kth[None, :] + per_bin[:, :width].cumsum(1)  # 0-based rank of k-th match
        hits = (kth[None, :] + 1).double() / (rank + 1).double()
        counted = kth[None, :] < torch.from_numpy(num_matches[lo:hi])[:, None]
        average_precision[lo:hi] = (hits * counted).sum(1).numpy()
        first_rank[lo:hi] = rank[:, 0].numpy()

    num_valid = int(valid.sum())
    if num_valid < num_q:
        logger.info("%d of %d queries have no true match in the gallery: skipped",
                    num_q - num_valid, num_q)
    hits_at = np.bincount(np.minimum(first_rank[valid], max_rank), minlength=max_rank + 1)
    cmc = hits_at[:max_rank].cumsum() / num_valid
    mean_ap = float((average_precision[valid] / num_matches[valid]).mean())
    return cmc.astype(np.float64), mean_ap


def pairwise_sqdist(qf: np.ndarray, gf: np.ndarray,
                    device: torch.device | None = None) -> np.ndarray:
    """Squared Euclidean distances (num_query, num_gallery) as float32, via one matmul."""
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"features must be (N, d) with equal d, got {qf.shape} and {gf.shape}")
    q = torch.as_tensor(qf, dtype=torch.float32, device=device)
    g = torch.as_tensor(gf, dtype=torch.float32, device=device)
    dist = q @ g.t()
    dist.mul_(-2).add_(q.pow(2).sum(1, keepdim=True)).add_(g.pow(2).sum(1)[None, :])
    return dist.clamp_(min=0).cpu().numpy()


def evaluate_features(qf: np.ndarray, gf: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                      q_camids: np.ndarray, g_camids: np.ndarray) -> dict[str, float]:
    """Rank-1/5/10 and mAP, in percent, from query and gallery features (squared L2).

    If the gallery has fewer than 10 images, rank-k past its size reports the last
    CMC value (100 when every query matched).
    """
    cmc, mean_ap = evaluate_rank(pairwise_sqdist(qf, gf), q_pids, g_pids, q_camids, g_camids)
    scores = {f"rank{k}": 100.0 * float(cmc[min(k, len(cmc)) - 1]) for k in RANKS_REPORTED}
    scores["mAP"] = 100.0 * mean_ap
    return scores


def evaluate_model(model: nn.Module, query_samples: Sequence[Sample],
                   gallery_samples: Sequence[Sample], image_cfg: ImageConfig,
                   device: torch.device, which: str = "pool",
                   progress: bool = False, amp: str = "off") -> dict[str, float]:
    """Extract features of query and gallery samples and score them (percent).

    Images that fail to decode are dropped from the evaluation with a warning.
    """
    feats = []
    for split, samples in (("query", query_samples), ("gallery", gallery_samples)):
        f = extract_features(model, [s.path for s in samples], image_cfg.height, image_cfg.width,
                             image_cfg.eval_batch_size, device, which=which,
                             num_workers=image_cfg.num_workers, progress=progress,
                             allow_missing=True, amp=amp)
        keep = np.isfinite(f).all(1)
        if samples and not keep.any():
            raise ValueError(f"the model gives no finite feature for any of the {len(samples)} {split} images "
                             "(its weights have diverged)")
        ids = np.array([[s.pid, s.camid] for s in samples], dtype=np.int64)[keep]
        feats.append((f[keep], ids[:, 0], ids[:, 1]))
    (qf, q_pids, q_camids), (gf, g_pids, g_camids) = feats
    return evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids)
