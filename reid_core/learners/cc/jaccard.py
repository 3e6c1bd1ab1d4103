"""k-reciprocal Jaccard distance (cluster-contrast's re-ranking distance), kept sparse.

Same result as the dense reference (:mod:`reid_core.learners.cc.jaccard_reference`,
written after cluster-contrast's ``compute_jaccard_distance``) without any N x N array:
every step is a scipy CSR matrix whose rows hold one image's neighbourhood only.

1. ``rank``: each image's k1 nearest images, itself first (one FAISS k-NN pass).
2. ``R`` (k1) and ``R_half`` (round(k1/2) + 1): k-reciprocal neighbours, j in i's list
   and i in j's (``A.multiply(A.T)`` of the forward-list matrix ``A``).
3. Expansion: i's set grows by ``R_half(c)`` for each c in ``R(i)`` sharing more than
   2/3 of ``R_half(c)`` with ``R(i)`` (an overlap count ``R @ R_half.T`` on R's pattern).
4. ``V[i, E(i)]`` = softmax of -(2 - 2 x_i.x_j) over the expanded set (unit features).
5. Query expansion: ``V_qe[i]`` = mean of ``V`` over i's k2 nearest (a sparse product).
6. ``d(i, j) = 1 - m / (2 - m)`` with ``m = sum_k min(V_qe[i,k], V_qe[j,k])``; only
   pairs sharing a column have m > 0, every other pair is at distance 1 (not stored).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reid_core.runtime.knn import search_base

_DOT_CHUNK = 1 << 12  # image pairs whose features are gathered at once (4k x d floats)
_PAIR_BUDGET = 1 << 22  # (i, j, min) triplets generated per block of rows in step 6
_BLOCK_CELLS = 1 << 23  # rows x N float64 accumulator per block (64 MB)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Features as C-contiguous float32 rows of unit length (the distance assumes them)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be 2-D with at least 2 rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def camera_aware_search(x: np.ndarray, k: int, camids: np.ndarray, penalty: float,
                        backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Each image's k nearest under d'(i, j) = |x_i - x_j|^2 + penalty [same camera, i != j].

    The penalty lets an image's other-camera look-alikes into its neighbourhood, where
    same-camera images (same background, light, viewpoint) would otherwise fill it.
    Exact without an N x N array: the k nearest under d' lie among each camera's own
    k nearest, so one search per camera's images (together one pass over the N x N
    pairs) and a merge of at most (cameras x k) candidates per image. Camera ids only.

    Returns
    -------
    sq_dist : (N, k) float32 plain squared distances, in d' order
    rank : (N, k) int64, itself first
    """
    camids = np.asarray(camids)
    if camids.shape != (len(x),):
        raise ValueError(f"camids must have one entry per feature row ({len(x)}), got shape {camids.shape}")
    if penalty < 0:
        raise ValueError(f"the same-camera penalty must be >= 0, got {penalty}")
    dists, ranks = [], []
    for cam in np.unique(camids):
        members = np.flatnonzero(camids == cam)
        d, i = search_base(x, x[members], min(k, len(members)), backend=backend)
        dists.append(d)
        ranks.append(members[i])
    sq_dist, rank = np.concatenate(dists, axis=1), np.concatenate(ranks, axis=1)
    penalised = sq_dist + np.float32(penalty) * same_camera(rank, camids)
    order = np.argsort(penalised, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sq_dist, order, axis=1), np.take_along_axis(rank, order, axis=1)


def same_camera(rank: np.ndarray, camids: np.ndarray) -> np.ndarray:
    """(N, k) float32: 1 where rank[i, t] is another image of image i's camera, else 0."""
    own = np.arange(len(rank))[:, None]
    return ((camids[rank] == camids[:, None]) & (rank != own)).astype(np.float32)


def initial_rank(x: np.ndarray, k1: int, backend: str = "auto") -> np.ndarray:
    """(N, k1) nearest images of each image, itself first (as cluster-contrast's faiss search)."""
    _, rank = search_base(x, x, k1, backend=backend)
    return rank


def forward_matrix(rank: np.ndarray, k: int) -> sp.csr_matrix:
    """0/1 matrix A with A[i, j] = 1 when j is among the first k entries of rank[i]."""
    n, k = len(rank), min(k, rank.shape[1])
    indptr = np.arange(0, n * k + 1, k)
    a = sp.csr_matrix((np.ones(n * k, np.float32), rank[:, :k].ravel(), indptr), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1.0
    return a


def reciprocal_matrix(rank: np.ndarray, k: int) -> sp.csr_matrix:
    """0/1 matrix R with R[i, j] = 1 when j is in i's first k and i is in j's first k."""
    a = forward_matrix(rank, k)
    r = a.multiply(a.T).tocsr()
    r.sort_indices()
    return r


def expanded_sets(rank: np.ndarray, k1: int) -> sp.csr_matrix:
    """0/1 matrix of each image's expanded k-reciprocal set E(i) (step 3)."""
    full = reciprocal_matrix(rank, k1)
    half = reciprocal_matrix(rank, int(np.around(k1 / 2)) + 1)
    half_size = np.diff(half.indptr).astype(np.float64)
    overlap = (full @ half.T).multiply(full).tocoo()  # |R(i) & R_half(c)| for c in R(i)
    keep = overlap.data > 2.0 / 3.0 * half_size[overlap.col]
    kept = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (overlap.row[keep], overlap.col[keep])),
                         shape=full.shape)
    expanded = (full + kept @ half).tocsr()
    expanded.data[:] = 1.0
    expanded.sort_indices()
    return expanded


def _row_ids(m: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))


def pair_dots(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x[rows[t]] . x[cols[t]] for every pair t, gathered in chunks (float32)."""
    out = np.empty(len(rows), np.float32)
    for s in range(0, len(rows), _DOT_CHUNK):
        out[s:s + _DOT_CHUNK] = np.einsum("ij,ij->i", x[rows[s:s + _DOT_CHUNK]], x[cols[s:s + _DOT_CHUNK]])
    return out


def set_dots(x: np.ndarray, sets: sp.csr_matrix, rank: np.ndarray | None = None,
             sq_dist: np.ndarray | None = None) -> np.ndarray:
    """x_i . x_j for each stored (i, j) of `sets`, in its order.

    Pairs within i's k-NN list take it from the search's squared distances
    (|x_i - x_j|^2 = 2 - 2 x_i.x_j for unit rows): ~90% of the expanded sets, so only
    the rest gathers features.
    """
    rows = _row_ids(sets)
    if rank is None or sq_dist is None:
        return pair_dots(x, rows, sets.indices)
    n, k = rank.shape
    known = sp.csr_matrix((3.0 - sq_dist.astype(np.float64).ravel() / 2.0, rank.ravel(), np.arange(0, n * k + 1, k)),
                          shape=sets.shape)  # dot + 2 > 0: stays stored
    known.sum_duplicates()
    pattern = sp.csr_matrix((np.ones(sets.nnz), sets.indices, sets.indptr), shape=sets.shape)
    merged = (pattern + pattern.multiply(known)).tocsr()  # exactly sets' pattern: 1, or dot + 3
    merged.sort_indices()
    dots = (merged.data - 3.0).astype(np.float32)
    missing = merged.data < 1.5
    dots[missing] = pair_dots(x, rows[missing], merged.indices[missing])
    return dots


def softmax_weights(x: np.ndarray, sets: sp.csr_matrix, rank: np.ndarray | None = None,
                    sq_dist: np.ndarray | None = None, camids: np.ndarray | None = None,
                    camera_penalty: float = 0.0) -> sp.csr_matrix:
    """V: row i is softmax(-d'(i, j)) over j in E(i), zero elsewhere (step 4).

    d'(i, j) = 2 - 2 x_i.x_j, plus ``camera_penalty`` when j is another image of i's camera.
    """
    if np.any(np.diff(sets.indptr) == 0):
        raise ValueError("an image has an empty k-reciprocal set (its own k-NN list lacks it)")
    sets.sort_indices()
    rows = _row_ids(sets)
    logits = -(2.0 - 2.0 * set_dots(x, sets, rank, sq_dist))
    if camera_penalty and camids is not None:
        same = (camids[rows] == camids[sets.indices]) & (rows != sets.indices)
        logits = logits - np.float32(camera_penalty) * same
    starts = sets.indptr[:-1]
    shifted = np.exp(logits - np.maximum.reduceat(logits, starts)[rows])
    weights = (shifted / np.add.reduceat(shifted, starts)[rows]).astype(np.float32)
    return sp.csr_matrix((weights, sets.indices.copy(), sets.indptr.copy()), shape=sets.shape)


def query_expansion(v: sp.csr_matrix, rank: np.ndarray, k2: int) -> sp.csr_matrix:
    """V_qe[i] = mean of V's rows over i's first k2 entries of rank (step 5)."""
    n, k2 = v.shape[0], min(k2, rank.shape[1])
    if k2 == 1:
        return v
    q = sp.csr_matrix((np.ones(n * k2, np.float32), rank[:, :k2].ravel(), np.arange(0, n * k2 + 1, k2)),
                      shape=(n, n))
    v_qe = (q @ v).tocsr()
    v_qe.data /= np.float32(k2)
    v_qe.sort_indices()
    return v_qe


def _row_blocks(v: sp.csr_matrix, col_count: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges whose step-6 triplets stay near _PAIR_BUDGET and accumulator near _BLOCK_CELLS."""
    n = v.shape[0]
    per_entry = col_count[v.indices]
    per_row = np.add.reduceat(per_entry, v.indptr[:-1]) if len(per_entry) else np.zeros(n, np.int64)
    max_rows = max(1, _BLOCK_CELLS // n)
    blocks, start, load = [], 0, 0
    for i, cost in enumerate(per_row.tolist()):
        if i > start and (load + cost > _PAIR_BUDGET or i - start >= max_rows):
            blocks.append((start, i))
            start, load = i, 0
        load += cost
    blocks.append((start, n))
    return blocks


def jaccard_from_weights(v_qe: sp.csr_matrix, max_distance: float = 1.0) -> sp.csr_matrix:
    """Step 6: the Jaccard distance of every pair sharing a column (sorted CSR, float32).

    Pairs with no shared column are at distance 1 and not stored; with
    ``max_distance`` < 1 stored pairs above it are dropped too (DBSCAN needs only those
    within eps). Distances below 0 (rounding) are set to 0, as the reference does.
    """
    n = v_qe.shape[0]
    by_col = v_qe.T.tocsr()  # row k: the images with weight in column k
    col_count = np.diff(by_col.indptr)
    rows_out, cols_out, vals_out = [], [], []
    for a, b in _row_blocks(v_qe, col_count):
        lo, hi = v_qe.indptr[a], v_qe.indptr[b]
        ks, vi = v_qe.indices[lo:hi], v_qe.data[lo:hi]
        local = np.repeat(np.arange(b - a), np.diff(v_qe.indptr[a:b + 1]))
        counts = col_count[ks]
        total = int(counts.sum())
        ends = np.cumsum(counts)
        at = np.repeat(by_col.indptr[ks] - (ends - counts), counts) + np.arange(total)  # ragged aranges
        mins = np.minimum(np.repeat(vi, counts), by_col.data[at])
        keys = np.repeat(local, counts) * n + by_col.indices[at]
        shared = np.bincount(keys, weights=mins, minlength=(b - a) * n)
        hit = np.flatnonzero(shared > 0)
        m = shared[hit]
        dist = np.maximum(1.0 - m / (2.0 - m), 0.0).astype(np.float32)
        keep = dist <= max_distance if max_distance < 1.0 else slice(None)
        rows_out.append(hit[keep] // n + a)
        cols_out.append(hit[keep] % n)
        vals_out.append(dist[keep])
    rows, cols, vals = (np.concatenate(p) for p in (rows_out, cols_out, vals_out))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n))))
    return sp.csr_matrix((vals, cols.astype(np.int32), indptr), shape=(n, n))


def sparse_jaccard_distance(features: np.ndarray, k1: int = 30, k2: int = 6, max_distance: float = 1.0,
                            backend: str = "auto", stats: dict | None = None, camids: np.ndarray | None = None,
                            camera_penalty: float = 0.0) -> sp.csr_matrix:
    """The k-reciprocal Jaccard distance of `features` (N, d) as a sparse CSR matrix.

    Missing entries are at distance 1. ``k1`` is cut to N and ``k2`` to ``k1`` on
    small edges. Features are L2-normalised first. ``stats`` (a dict) receives
    ``search_s``, the seconds of the k-NN search (the rest is our own work). With
    ``camids`` and ``camera_penalty`` > 0 the squared distance between two images of one
    camera grows by the penalty everywhere (neighbour lists and weights, see
    :func:`camera_aware_search`).
    """
    import time

    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    x = unit_rows(features)
    k1 = min(k1, len(x))
    t0 = time.perf_counter()
    aware = camids is not None and camera_penalty > 0
    if aware:
        camids = np.asarray(camids)
        sq_dist, rank = camera_aware_search(x, k1, camids, camera_penalty, backend)
    else:
        sq_dist, rank = search_base(x, x, k1, backend=backend)  # itself first, as in the reference
    if stats is not None:
        stats["search_s"] = time.perf_counter() - t0
    v = softmax_weights(x, expanded_sets(rank, k1), rank, sq_dist,
                        camids if aware else None, camera_penalty if aware else 0.0)
    return jaccard_from_weights(query_expansion(v, rank, min(k2, k1)), max_distance)
