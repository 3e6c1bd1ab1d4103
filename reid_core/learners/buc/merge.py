"""BUC merge step (Lin et al., AAAI'19) as used by FedUReID, exact in O(N*k) memory.

The procedure (shared by every implementation here):

* cost(i, j) = ||x_i - x_j||^2 + lam * (|C(i)| + |C(j)|), cluster sizes from before
  the step; pairs inside one cluster are excluded.
* Pairs i < j are visited in ascending order of the key (cost, i, j): equal costs
  are broken by the lexicographic order of (i, j).
* Each visited pair joins the two current clusters (union-find, the smaller label
  survives; a pair already joined in this step is skipped) until ``num_merge``
  clusters have disappeared. Surviving labels are renumbered 0.. in ascending
  order.

Canonical cost arithmetic: so that every implementation orders pairs identically
(exact ties included), distances are computed on the features rounded to a
fixed-point grid of 2**-shift (shift = 24 for unit vectors, finer than float32
near 1). On that grid every product and partial sum is an integer below
2**53, so float64 dot products are exact in any summation order (BLAS, einsum,
per pair) and all implementations get bit-identical costs.

:func:`buc_merge` finds candidate pairs with an exact float32 k-NN search, orders
them with the exact costs and proves that no pair outside the candidates could
come before the last merge (see ``_merge_from_candidates``); otherwise it searches
deeper for the queries whose bound is too weak.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from reid_core.runtime.knn import knn_search

logger = logging.getLogger(__name__)

_ROW_CHUNK = 1024  # rows per float64 temporary (16 MB at d = 2048)


def _validate(
    features: np.ndarray, labels: np.ndarray, num_merge: int, lam: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return float32 C-contiguous features, int64 labels and cluster sizes."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) < 1:
        raise ValueError(f"features must be a non-empty (N, d) array, got shape {features.shape}")
    if labels.shape != (len(features),):
        raise ValueError(f"labels must have shape ({len(features)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    sizes = np.bincount(labels)
    if np.any(sizes == 0):
        raise ValueError(f"labels must use every value 0..C-1; missing {np.flatnonzero(sizes == 0)[:5]}")
    if not 0 <= num_merge <= len(sizes) - 1:
        raise ValueError(f"num_merge must be in 0..C-1 = 0..{len(sizes) - 1}, got {num_merge}")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam}")
    for start in range(0, len(features), _ROW_CHUNK):  # chunks: no N x d bool temporary
        if not np.isfinite(features[start : start + _ROW_CHUNK]).all():
            raise ValueError("features contain NaN or inf")
    return features, labels, sizes


def _max_sq_norm(features: np.ndarray) -> float:
    return max(
        float(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64).max())
        for chunk in np.array_split(features, max(1, len(features) // _ROW_CHUNK))
    )


def _quantization_shift(max_sq_norm: float, dim: int) -> int:
    """Largest shift with sum_k |q_ik| * |q_jk| <= 2**50 for q = round(x * 2**shift)."""
    if max_sq_norm == 0.0:
        return 0
    shift = math.floor(25 - 0.5 * math.log2(max_sq_norm)) + 1
    # ||q|| <= ||x|| 2**shift + 0.5 sqrt(d) (rounding); shrink until the bound holds.
    while (math.sqrt(max_sq_norm) * 2.0**shift + 0.5 * math.sqrt(dim)) ** 2 > 2.0**50:
        shift -= 1
    return shift


def _quantize(rows: np.ndarray, shift: int) -> np.ndarray:
    return np.rint(np.ldexp(rows.astype(np.float64), shift))


def _exact_sq_distances(
    features: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, shift: int
) -> np.ndarray:
    """Canonical squared distances of pairs (rows_a[t], rows_b[t]), float64."""
    out = np.empty(len(rows_a), dtype=np.float64)
    for start in range(0, len(rows_a), _ROW_CHUNK):
        qa = _quantize(features[rows_a[start : start + _ROW_CHUNK]], shift)
        qb = _quantize(features[rows_b[start : start + _ROW_CHUNK]], shift)
        norm_a, norm_b = np.einsum("ij,ij->i", qa, qa), np.einsum("ij,ij->i", qb, qb)
        integer_dist = norm_a + norm_b - 2.0 * np.einsum("ij,ij->i", qa, qb)
        out[start : start + _ROW_CHUNK] = np.ldexp(integer_dist, -2 * shift)
    return out


def _pair_costs(sq_dist: np.ndarray, size_sum: np.ndarray, lam: float) -> np.ndarray:
    """Merge cost; every implementation uses this exact expression."""
    return sq_dist + lam * size_sum.astype(np.float64)


def _float32_error_bound(max_sq_norm: float, dim: int, shift: int) -> float:
    """Bound on |float32 k-NN distance - canonical distance| for any pair.

    float32 ||x||^2 + ||y||^2 - 2<x, y> errs by at most (2 gamma_d + 4u)(||x||^2 +
    ||y||^2) with u = 2**-24, gamma_d ~ d u (any summation order); the fixed-point
    rounding moves a distance by at most 2 ||x - y|| sqrt(d) 2**-shift + d 4**-shift.
    """
    unit = 2.0**-24
    float32_err = (2 * (dim + 2) * unit + 4 * unit) * 2 * max_sq_norm * 1.01
    grid_err = 4 * math.sqrt(max_sq_norm * dim) * 2.0**-shift + dim * 4.0**-shift
    return float32_err + grid_err


def _find_stop(
    label_a: np.ndarray, label_b: np.ndarray, num_merge: int, num_clusters: int
) -> tuple[int, np.ndarray, list[int]]:
    """Union pairs in the given order until ``num_merge`` merges happened.

    Returns the position of the pair that made the last merge (-1 if the pairs
    run out), the union-find parents (each root is its component's min label) and
    the positions of the pairs that made a merge (for the merge diagnostics).
    Chunks of pairs whose clusters are already joined are dropped vectorised, so
    the Python loop only sees pairs that were between clusters at chunk start.
    """
    parent = np.arange(num_clusters)
    merges, start = 0, 0
    made: list[int] = []
    while start < len(label_a):
        while True:  # pointer jumping: every entry points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        stop = start + max(256, 2 * (num_merge - merges))
        live = np.flatnonzero(parent[label_a[start:stop]] != parent[label_b[start:stop]])
        par = parent.tolist()
        for pos, a, b in zip(live.tolist(), label_a[start + live].tolist(), label_b[start + live].tolist()):
            while par[a] != a:
                par[a] = a = par[par[a]]
            while par[b] != b:
                par[b] = b = par[par[b]]
            if a == b:
                continue
            par[max(a, b)] = min(a, b)
            merges += 1
            made.append(start + pos)
            if merges == num_merge:
                return start + pos, np.array(par), made
        parent = np.array(par)
        start = stop
    return -1, parent, made


def _labels_from_parents(parent: np.ndarray, labels: np.ndarray) -> np.ndarray:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        parent = grand
    return np.unique(parent[labels], return_inverse=True)[1].astype(np.int64)


def _initial_depth(point_size: np.ndarray, base_k: int, num_points: int) -> np.ndarray:
    """k per query: base_k plus room for its own cluster, rounded up to base_k * 2**m.

    Rounding to a few depths keeps the number of separate searches small.
    """
    wanted = base_k + point_size - 1
    depth = np.full(len(point_size), base_k, dtype=np.int64)
    while np.any(depth < wanted):
        depth[depth < wanted] *= 2
    return np.minimum(depth, num_points - 1)


def _search_into(
    table: dict, features: np.ndarray, queries: np.ndarray, depth: np.ndarray, backend: str
) -> None:
    """(Re)search ``queries`` at their ``depth``; ``table`` maps k -> (rows, dist, idx)."""
    redo = np.zeros(len(features), dtype=bool)
    redo[queries] = True
    for k, (rows, dist, idx) in list(table.items()):
        keep = ~redo[rows]
        table[k] = (rows[keep], dist[keep], idx[keep])
    for k in np.unique(depth[queries]).tolist():
        rows = queries[depth[queries] == k]
        dist, idx = knn_search(features, k, queries_idx=rows, backend=backend)
        if k in table:
            old_rows, old_dist, old_idx = table[k]
            rows = np.concatenate([old_rows, rows])
            dist, idx = np.vstack([old_dist, dist]), np.vstack([old_idx, idx])
        table[k] = (rows, dist, idx)


def _merge_from_candidates(
    table: dict, features: np.ndarray, labels: np.ndarray, point_size: np.ndarray, num_merge: int,
    num_clusters: int, lam: float, shift: int, margin: float,
) -> tuple[float, np.ndarray | None, int, np.ndarray]:
    """Run the merge on the candidate pairs; return (stop cost, parents, #exact pairs, merge pairs).

    Candidates are first ordered by their float32 costs to find the approximate
    stop T32. Every candidate whose canonical cost could be <= the canonical stop
    (float32 cost <= T32 + 2 * margin) is re-costed exactly and re-ordered by the
    key (cost, i, j); the rest are provably later. Returns cost inf when the
    candidates cannot produce ``num_merge`` merges.
    """
    num_points = len(labels)
    query = np.concatenate([np.repeat(rows, dist.shape[1]) for rows, dist, _ in table.values()])
    other = np.concatenate([idx.ravel() for _, _, idx in table.values()])
    dist32 = np.concatenate([dist.ravel() for _, dist, _ in table.values()])
    between = labels[query] != labels[other]
    first, second = np.minimum(query, other)[between], np.maximum(query, other)[between]
    approx = dist32[between] + lam * (point_size[first] + point_size[second]).astype(np.float64)
    order = np.argsort(approx)
    pos, _, _ = _find_stop(labels[first[order]], labels[second[order]], num_merge, num_clusters)
    no_pairs = np.zeros((0, 2), dtype=np.int64)
    if pos < 0:
        return math.inf, None, 0, no_pairs
    near = approx <= approx[order[pos]] + 2 * margin
    pair_key = np.unique(first[near] * num_points + second[near])
    first, second = np.divmod(pair_key, num_points)
    sq_dist = _exact_sq_distances(features, first, second, shift)
    cost = _pair_costs(sq_dist, point_size[first] + point_size[second], lam)
    order = np.lexsort((second, first, cost))
    pos, parent, made = _find_stop(labels[first[order]], labels[second[order]], num_merge, num_clusters)
    if pos < 0:  # cannot happen: the float32 prefix is inside the exact set; stay safe
        return math.inf, None, len(pair_key), no_pairs
    pairs = np.stack([first[order][made], second[order][made]], axis=1).astype(np.int64)
    return float(cost[order[pos]]), parent, len(pair_key), pairs


def buc_merge(
    features: np.ndarray,
    labels: np.ndarray,
    num_merge: int,
    lam: float,
    *,
    base_k: int = 20,
    backend: str = "auto",
    stats: dict | None = None,
) -> np.ndarray:
    """Merge ``num_merge`` clusters by the BUC criterion; exact, O(N * k) memory.

    Parameters
    ----------
    features : np.ndarray, shape (N, d)
        Image features (float32, normally L2-normalised).
    labels : np.ndarray, shape (N,)
        Current cluster of each image, integers using every value 0..C-1.
    num_merge : int
        Clusters that disappear, 0 <= num_merge <= C - 1.
    lam : float
        Size penalty lambda (0.003 in FedUReID).
    base_k : int
        Initial neighbours per image beyond its own cluster (search depth).
    backend : str
        k-NN backend, see :func:`reid_core.runtime.knn.knn_search`.
    stats : dict, optional
        Filled with ``searches`` (passes), ``refined_queries``, ``exact_pairs``,
        ``search_s`` (seconds spent in k-NN searches) and ``merge_pairs`` (shape
        (num_merge, 2): the image pair (i, j) whose cost made each merge, in order).

    Returns
    -------
    np.ndarray, shape (N,)
        New labels 0..C-num_merge-1, identical to :func:`buc_merge_dense`.

    Notes
    -----
    Exactness: a pair (i, j) that is in neither k-NN list has float32 distance
    >= d_k(i), hence cost >= d_k(i) - margin + lam * (|C(i)| + min size). Each
    query whose bound does not exceed the stop cost is searched again at twice
    its depth (until it covers all N - 1 others), and the merge is redone.
    """
    features, labels, sizes = _validate(features, labels, num_merge, lam)
    if base_k < 1:
        raise ValueError(f"base_k must be >= 1, got {base_k}")
    num_points, dim = features.shape
    if num_merge == 0:
        return labels
    point_size = sizes[labels]
    max_sq_norm = _max_sq_norm(features)
    shift = _quantization_shift(max_sq_norm, dim)
    margin = _float32_error_bound(max_sq_norm, dim, shift)
    depth = _initial_depth(point_size, base_k, num_points)
    table: dict = {}
    pending = np.arange(num_points)
    searches, refined, search_s = 0, 0, 0.0
    while True:
        started = time.perf_counter()
        _search_into(table, features, pending, depth, backend)
        search_s += time.perf_counter() - started
        searches += 1
        stop_cost, parent, exact_pairs, pairs = _merge_from_candidates(
            table, features, labels, point_size, num_merge, len(sizes), lam, shift, margin
        )
        kth = np.empty(num_points)
        for rows, dist, _ in table.values():
            kth[rows] = dist[:, -1]
        bound = kth - margin + lam * (point_size + sizes.min())
        pending = np.flatnonzero((bound <= stop_cost) & (depth < num_points - 1))
        if len(pending) == 0:
            break
        refined += len(pending)
        depth[pending] = np.minimum(2 * depth[pending], num_points - 1)
        logger.debug("buc_merge: %d queries need a deeper search", len(pending))
    if stats is not None:
        stats.update(searches=searches, refined_queries=refined, exact_pairs=exact_pairs, search_s=search_s,
                     merge_pairs=pairs)
    return _labels_from_parents(parent, labels)
