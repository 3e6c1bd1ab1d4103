"""learner=cc's clustering step (sparse Jaccard + DBSCAN) against one FAISS k-NN pass and the dense reference.

Part of ``fedureid bench clustering`` (``--learner cc``). Per size, on the same features:
one exact FAISS k-NN pass with k = k1 (the yardstick), our step (its own k-NN pass
included) split into Jaccard and DBSCAN, that inner k-NN search's own time (``srch s``;
``extra s`` = our time outside it, robust to other processes' load), the dense cluster-contrast-style reference
(:func:`reid_core.learners.cc.jaccard_reference.dense_jaccard_distance` + DBSCAN on the
dense matrix) where it fits, whether the labels are identical, and the peak RSS increase
of each beyond the features. With ``--camera-penalty P --cameras C`` (learner=cc's
``cc.camera_penalty``) every image gets one of C camera ids and both our step and the dense
reference add P to same-camera squared distances: our search is then one k-NN search per
camera's images, merged (``jaccard.camera_aware_search``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from reid_core.learners.cc.clustering import dbscan_labels
from reid_core.learners.cc.jaccard import sparse_jaccard_distance
from reid_core.runtime.knn import resolve_backend, search_base

HEADER = (f"{'N':>6} {'feat MB':>7} | {'knn s':>6} {'ours s':>6} {'ours/knn':>8} {'srch s':>6} {'extra s':>7} "
          f"{'ours/srch':>9} {'jacc s':>6} {'dbscan s':>8} "
          f"{'pairs/N':>7} | {'knn MB':>6} {'ours MB':>7} | {'C':>5} {'outl':>5} | {'dense s':>7} "
          f"{'dense/ours':>10} {'dense MB':>8} {'=dense':>6}")


def _ours(features: np.ndarray, k1: int, k2: int, eps: float, min_samples: int,
          camids: np.ndarray | None = None, penalty: float = 0.0) -> dict[str, Any]:
    t0 = time.perf_counter()
    stats: dict = {}
    dist = sparse_jaccard_distance(features, k1, k2, max_distance=eps, stats=stats, camids=camids,
                                   camera_penalty=penalty)
    t1 = time.perf_counter()
    labels = dbscan_labels(dist, eps, min_samples)
    return {"labels": labels, "jaccard_s": t1 - t0, "dbscan_s": time.perf_counter() - t1, "pairs": dist.nnz,
            "search_s": stats["search_s"]}


def _dense(features: np.ndarray, k1: int, k2: int, eps: float, min_samples: int,
           camids: np.ndarray | None = None, penalty: float = 0.0) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    from reid_core.learners.cc.jaccard_reference import dense_jaccard_distance

    dist = dense_jaccard_distance(features, k1, k2, camids=camids, camera_penalty=penalty)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist)


def bench_cc_size(num_images: int, dim: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row: k-NN pass, our step, the dense reference (N <= --dense-max)."""
    from lab.bench.common import clustered_features, measure

    features, _ = clustered_features(num_images, dim, seed=args.seed)
    camids = bench_camids(num_images, args)
    aware = {"camids": camids, "penalty": args.camera_penalty}
    row: dict[str, Any] = {"N": num_images, "feat_mb": features.nbytes / 2**20}
    knn_times, ours_times = [], []
    for _ in range(args.repeat):  # interleaved, so contention hits both alike
        if not args.no_knn_pass:
            _, seconds, row["knn_mb"] = measure(lambda: search_base(features, features, args.k1,
                                                                    backend=resolve_backend("auto")))
            knn_times.append(seconds)
        ours, seconds, row["ours_mb"] = measure(lambda: _ours(features, args.k1, args.k2, args.eps, args.min_samples, **aware))
        ours_times.append(seconds)
    row.update(knn_s=min(knn_times) if knn_times else None, ours_s=min(ours_times), jaccard_s=ours["jaccard_s"],
               search_s=ours["search_s"], extra_s=min(ours_times) - ours["search_s"],
               dbscan_s=ours["dbscan_s"], pairs_per_image=ours["pairs"] / num_images,
               C=int(ours["labels"].max()) + 1, outliers=int((ours["labels"] < 0).sum()))
    row["ratio_knn"] = row["ours_s"] / row["knn_s"] if knn_times else None
    row["ratio_search"] = row["ours_s"] / row["search_s"]  # the same k-NN pass, timed inside our call
    if num_images <= args.dense_max:
        dense, row["dense_s"], row["dense_mb"] = measure(
            lambda: _dense(features, args.k1, args.k2, args.eps, args.min_samples, **aware))
        row["dense_ratio"] = row["dense_s"] / row["ours_s"]
        row["same_as_dense"] = bool(np.array_equal(ours["labels"], dense))
    print(format_cc_row(row), flush=True)
    return row


def bench_camids(num_images: int, args: argparse.Namespace) -> np.ndarray | None:
    """Random camera ids in [0, --cameras) when a camera penalty is timed, else None."""
    if not args.camera_penalty:
        return None
    return np.random.default_rng(args.seed + 1).integers(0, args.cameras, num_images)


def format_cc_row(row: dict[str, Any]) -> str:
    from lab.bench.common import _fmt

    get = row.get
    return (f"{row['N']:>6} {row['feat_mb']:>7.0f} | {_fmt(get('knn_s'), '6.2f'):>6} {row['ours_s']:>6.2f} "
            f"{_fmt(get('ratio_knn'), '8.2f'):>8} {row['search_s']:>6.2f} {row['extra_s']:>7.2f} "
            f"{row['ratio_search']:>9.2f} {row['jaccard_s']:>6.2f} {row['dbscan_s']:>8.2f} "
            f"{row['pairs_per_image']:>7.0f} | {_fmt(get('knn_mb'), '6.0f'):>6} {row['ours_mb']:>7.0f} | {row['C']:>5} "
            f"{row['outliers']:>5} | {_fmt(get('dense_s'), '7.2f'):>7} {_fmt(get('dense_ratio'), '10.1f'):>10} "
            f"{_fmt(get('dense_mb'), '8.0f'):>8} {_fmt(get('same_as_dense'), ''):>6}")


def run_cc(sizes: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    print(f"\nlearner=cc: sparse Jaccard (k1={args.k1}, k2={args.k2}) + DBSCAN (eps={args.eps}, "
          f"min_samples={args.min_samples}"
          + (f", same-camera penalty {args.camera_penalty} over {args.cameras} cameras" if args.camera_penalty else "")
          + f") vs one FAISS k-NN pass (k={args.k1}) and the dense reference; "
          f"'ours s' includes its own k-NN pass; MB = peak RSS increase")
    warm = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    # imports (scipy, scikit-learn) and the camera-aware path's first call out of the timings
    _ours(warm, 10, 3, args.eps, 2, camids=bench_camids(len(warm), args), penalty=args.camera_penalty)
    print(HEADER, flush=True)
    return [bench_cc_size(n, args.dim, args) for n in sizes]
