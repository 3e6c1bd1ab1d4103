"""Exact k-nearest-neighbour search (squared L2) with a FAISS or torch backend.

Backends, picked by ``backend="auto"``: FAISS on GPU when a GPU build sees a
device, FAISS on CPU, else a chunked torch matmul + topk (used when faiss cannot
be imported). All three are exact searches on float32 distances.

Fork hazard: once a process has run a FAISS search, a DataLoader worker forked
from it hangs inside its first FAISS call (OpenMP pool). Pass
:func:`faiss_worker_init` as ``worker_init_fn`` when workers may call faiss.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "faiss-gpu", "faiss-cpu", "torch")
# Distributions that all install the same top-level ``faiss`` package.
FAISS_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu11", "faiss-gpu-cu12", "faiss")
_GPU_MAX_K = 2048  # faiss GPU flat search limit
_TORCH_CHUNK_BYTES = 64 * 2**20  # size of one (queries x database) distance block
_QUERY_CHUNK_BYTES = 64 * 2**20  # queries copied out of a row subset at once


def _import_faiss() -> Any | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _num_faiss_gpus(faiss: Any) -> int:
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # a GPU build without a usable driver
        return 0


def faiss_info() -> dict[str, Any]:
    """Describe the FAISS install: distributions, version, GPUs, chosen backend.

    Returns
    -------
    dict
        ``distributions`` (name -> version of every installed faiss wheel),
        ``importable``, ``version``, ``num_gpus``, ``backend`` (what
        ``backend="auto"`` picks) and ``problems`` (human-readable warnings; two
        faiss wheels overwrite each other's ``faiss/`` folder, so more than one is
        reported there and logged as a warning).
    """
    distributions: dict[str, str] = {}
    for name in FAISS_DISTRIBUTIONS:
        try:
            distributions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    problems = []
    if len(distributions) > 1:
        problems.append(
            "more than one faiss distribution is installed "
            f"({', '.join(sorted(distributions))}); they share the faiss/ folder, so "
            "the one installed last wins. Uninstall all but one."
        )
    faiss = _import_faiss()
    if faiss is None:
        problems.append("faiss cannot be imported; k-NN falls back to torch")
    for problem in problems:
        logger.warning(problem)
    return {
        "distributions": distributions,
        "importable": faiss is not None,
        "version": getattr(faiss, "__version__", None),
        "num_gpus": _num_faiss_gpus(faiss) if faiss is not None else 0,
        "backend": resolve_backend("auto"),
        "problems": problems,
    }


def resolve_backend(backend: str = "auto") -> str:
    """Return the concrete backend for ``backend`` ("auto" picks the fastest usable)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown k-NN backend {backend!r}; expected one of {BACKENDS}")
    faiss = _import_faiss()
    if backend == "auto":
        if faiss is None:
            return "torch"
        return "faiss-gpu" if _num_faiss_gpus(faiss) > 0 else "faiss-cpu"
    if backend.startswith("faiss") and faiss is None:
        raise ValueError(f"k-NN backend {backend!r} requested but faiss cannot be imported")
    if backend == "faiss-gpu" and _num_faiss_gpus(faiss) == 0:
        raise ValueError("k-NN backend 'faiss-gpu' requested but faiss sees no GPU")
    return backend


def faiss_worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: single-threaded faiss avoids the fork hang."""
    del worker_id
    faiss = _import_faiss()
    if faiss is not None:
        faiss.omp_set_num_threads(1)


def _search_torch(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    xb = torch.from_numpy(base)
    base_sq = (xb * xb).sum(dim=1)
    chunk = max(1, _TORCH_CHUNK_BYTES // (4 * len(base)))
    dists, idxs = [], []
    for start in range(0, len(queries), chunk):
        xq = torch.from_numpy(queries[start : start + chunk])
        block = (xq * xq).sum(dim=1, keepdim=True) + base_sq[None, :] - 2.0 * (xq @ xb.T)
        values, indices = torch.topk(block, k, dim=1, largest=False, sorted=True)
        dists.append(values.clamp_min_(0.0).numpy())
        idxs.append(indices.numpy())
    return np.concatenate(dists), np.concatenate(idxs).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _gpu_resources() -> Any:
    """One StandardGpuResources per process (creating it reserves GPU memory)."""
    return _import_faiss().StandardGpuResources()


def search_base(
    queries: np.ndarray, base: np.ndarray, k: int, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Raw exact k-NN of ``queries`` among ``base`` rows (a query finds itself too).

    Parameters
    ----------
    queries : np.ndarray, shape (Q, d)
    base : np.ndarray, shape (N, d)
        Both used as C-contiguous float32 (copied only when they are not).
    k : int
        1 <= k <= N.
    backend : str
        "auto" | "faiss-gpu" | "faiss-cpu" | "torch".

    Returns
    -------
    dist : np.ndarray, shape (Q, k), float32 squared L2, ascending per row
    idx : np.ndarray, shape (Q, k), int64
    """
    backend = resolve_backend(backend)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    base = np.ascontiguousarray(base, dtype=np.float32)
    if not 1 <= k <= len(base):
        raise ValueError(f"k must be in 1..{len(base)} (rows of base), got {k}")
    if queries.ndim != 2 or base.ndim != 2 or queries.shape[1] != base.shape[1]:
        raise ValueError(f"queries {queries.shape} and base {base.shape} must be 2-D with equal d")
    if backend == "torch":
        return _search_torch(queries, base, k)
    faiss = _import_faiss()
    if backend == "faiss-gpu" and k <= _GPU_MAX_K:
        dist, idx = faiss.knn_gpu(_gpu_resources(), queries, base, k)
    else:  # faiss.knn searches without copying the base into an index
        dist, idx = faiss.knn(queries, base, k)
    return dist, idx.astype(np.int64, copy=False)


def knn_search(
    features: np.ndarray,
    k: int,
    queries_idx: np.ndarray | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Find the exact k nearest other points of each query (squared L2).

    Parameters
    ----------
    features : np.ndarray, shape (N, d)
        Database; converted to C-contiguous float32 (no copy when it already is).
    k : int
        Neighbours per query, 1 <= k <= N - 1.
    queries_idx : np.ndarray, shape (Q,), optional
        Rows of ``features`` to search for; all rows when None.
    backend : str
        "auto" | "faiss-gpu" | "faiss-cpu" | "torch".

    Returns
    -------
    dist : np.ndarray, shape (Q, k), float32
        Squared L2 distances, ascending per row.
    idx : np.ndarray, shape (Q, k), int64
        Neighbour rows. The query itself is excluded; when duplicates tie with it
        at distance 0 one copy of distance 0 is dropped instead, so ``dist`` is
        still the exact k smallest distances to other points.
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (N, d), got shape {features.shape}")
    num_points = len(features)
    if not 1 <= k <= num_points - 1:
        raise ValueError(f"k must be in 1..N-1 = 1..{num_points - 1}, got {k}")
    if queries_idx is None:
        queries_idx = np.arange(num_points)
    else:
        queries_idx = np.asarray(queries_idx, dtype=np.int64)
        if queries_idx.ndim != 1 or np.any((queries_idx < 0) | (queries_idx >= num_points)):
            raise ValueError("queries_idx must be a 1-D array of row indices in 0..N-1")
    if len(queries_idx) == 0:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    dist, idx = _search_rows(features, queries_idx, k + 1, backend)
    # Drop the query itself; if it is absent (tied duplicates), drop the last column.
    is_self = idx == queries_idx[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    first_self = is_self.argmax(axis=1)
    is_self[:] = False
    is_self[np.arange(len(idx)), first_self] = True
    keep = ~is_self
    return dist[keep].reshape(-1, k), idx[keep].reshape(-1, k)


def _search_rows(
    features: np.ndarray, rows: np.ndarray, k: int, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    """Search ``features[rows]`` without copying more than ~64 MB of queries at once."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        return search_base(features[rows[0] : rows[-1] + 1], features, k, backend)  # a view
    chunk = max(1, _QUERY_CHUNK_BYTES // (4 * features.shape[1]))
    parts = [search_base(features[rows[start : start + chunk]], features, k, backend)
             for start in range(0, len(rows), chunk)]
    return np.vstack([d for d, _ in parts]), np.vstack([i for _, i in parts])
