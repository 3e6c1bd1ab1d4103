"""Dense k-reciprocal Jaccard distance in cluster-contrast's style, for tests and the benchmark only.

Follows ``clustercontrast/utils/faiss_rerank.py: compute_jaccard_distance`` step by step:
a Python loop per image and three dense N x N float32 matrices (V, its query expansion
and the distance), so it is slow and needs ~12 N^2 bytes. The learner uses
:func:`reid_core.learners.cc.jaccard.sparse_jaccard_distance`.
"""

from __future__ import annotations

import numpy as np

from reid_core.learners.cc.jaccard import initial_rank, unit_rows


def _k_reciprocal_neigh(rank: np.ndarray, i: int, k1: int) -> np.ndarray:
    forward = rank[i, :k1 + 1]
    backward = rank[forward, :k1 + 1]
    return forward[np.where(backward == i)[0]]


def dense_jaccard_distance(features: np.ndarray, k1: int = 30, k2: int = 6, backend: str = "auto",
                           camids: np.ndarray | None = None, camera_penalty: float = 0.0) -> np.ndarray:
    """(N, N) float32 Jaccard distance (1 where two images share nothing).

    With ``camids`` and ``camera_penalty`` the squared distance of two images of one camera
    grows by the penalty (a dense argsort of the whole penalised matrix gives the ranks).
    """
    import torch
    import torch.nn.functional as F

    x_np = unit_rows(features)
    n = len(x_np)
    k1 = min(k1, n)
    k2 = min(k2, k1)
    x = torch.from_numpy(x_np)
    penalty = np.zeros((n, n), np.float32)
    if camids is not None and camera_penalty:
        camids = np.asarray(camids)
        penalty = (camera_penalty * (camids[:, None] == camids[None, :])).astype(np.float32)
        np.fill_diagonal(penalty, 0.0)
        full = 2 - 2 * (x_np @ x_np.T) + penalty
        rank = np.argsort(full, axis=1, kind="stable")[:, :k1]
    else:
        rank = initial_rank(x_np, k1, backend)  # the reference's faiss search: k1 columns, self first
    nn_k1 = [_k_reciprocal_neigh(rank, i, k1) for i in range(n)]
    nn_k1_half = [_k_reciprocal_neigh(rank, i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        k_reciprocal = nn_k1[i]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            cand = nn_k1_half[candidate]
            if len(np.intersect1d(cand, k_reciprocal)) > 2 / 3 * len(cand):
                expansion = np.append(expansion, cand)
        expansion = np.unique(expansion)
        dist = 2 - 2 * torch.mm(x[i].unsqueeze(0).contiguous(), x[expansion].t()) + torch.from_numpy(
            penalty[i, expansion]).unsqueeze(0)
        v[i, expansion] = F.softmax(-dist, dim=1).view(-1).numpy()
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i, :] = np.mean(v[rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        temp_min = np.zeros((1, n), dtype=np.float32)
        nonzero = np.where(v[i, :] != 0)[0]
        images = [inv_index[k] for k in nonzero]
        for j in range(len(nonzero)):
            temp_min[0, images[j]] += np.minimum(v[i, nonzero[j]], v[images[j], nonzero[j]])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    jaccard[jaccard < 0] = 0.0
    return jaccard
