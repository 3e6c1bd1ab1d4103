"""Time the BUC merge step against one FAISS k-NN pass and the original dense code.

With ``--learner cc`` (or ``all``, the default) also learner=cc's Jaccard + DBSCAN step
(:mod:`lab.bench.cc_clustering`).

Run: ``fedureid bench clustering [--sizes 2000 12936] [--large] [--skip-original] [--learner buc|cc|all]
[--camera-penalty 0.3 --cameras 6]``
(or ``python -m lab.bench.clustering``). Every number in a row comes from
the same run on the same features: one exact FAISS k-NN pass (k=20), our merge at
the first round (singletons) and at a later round (clusters of 2-10 images), the
original-style merge, their ratios, the peak RSS increase of each and whether the
labels equal :func:`reid_core.learners.buc.merge.buc_merge_dense` / the original style.
Columns: ``srch`` search passes, ``refine`` queries searched again deeper, ``extra s``
our time outside k-NN searches (robust to CPU contention from other processes).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from lab.bench.common import _fmt, clustered_features, measure
from reid_core.learners.buc.merge import buc_merge
from reid_core.learners.buc.merge_reference import buc_merge_dense
from reid_core.runtime.knn import faiss_info, resolve_backend, search_base

MARKET_TRAIN_IMAGES = 12936


def buc_merge_original_style(
    features: np.ndarray, labels: np.ndarray, num_merge: int, lam: float
) -> np.ndarray:
    """The original code's merge (EasyFL ``reid/bottomup.py``), kept for comparison.

    Dense float32 N x N torch matrix, +1e5 on the lower triangle and on same-cluster
    pairs, full argsort of N^2 entries, and a Python relabel of the whole label list
    per visited pair. The original loops over all N^2/2 pairs to find same-cluster
    ones (hours at Market size); this loops over same-cluster pairs only.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    m = len(x)
    label = [int(v) for v in labels]
    dists = torch.pow(x, 2).sum(dim=1, keepdim=True).expand(m, m) + \
        torch.pow(x, 2).sum(dim=1, keepdim=True).expand(m, m).t()
    dists.addmm_(x, x.t(), beta=1, alpha=-2)
    dists.add_(torch.tril(100000 * torch.ones(m, m)))
    label_to_images: dict[int, list[int]] = {}
    for idx, lab in enumerate(label):
        label_to_images[lab] = label_to_images.get(lab, []) + [idx]
    cnt = torch.FloatTensor([len(label_to_images[label[idx]]) for idx in range(m)])
    dists += lam * (cnt.view(1, len(cnt)) + cnt.view(len(cnt), 1))
    for members in label_to_images.values():
        for i in members:
            for j in members:
                if i < j:
                    dists[i, j] = 100000
    ind = np.unravel_index(np.argsort(dists.numpy(), axis=None), (m, m))
    idx1, idx2 = ind[0], ind[1]
    num_before_merge = len(np.unique(np.array(label)))
    for i in range(len(idx1)):
        label1, label2 = label[idx1[i]], label[idx2[i]]
        if label1 < label2:
            label = [label1 if x == label2 else x for x in label]
        else:
            label = [label2 if x == label1 else x for x in label]
        if num_before_merge - len(np.sort(np.unique(np.array(label)))) == num_merge:
            break
    unique_label = np.sort(np.unique(np.array(label)))
    for i in range(len(unique_label)):
        label_now = unique_label[i]
        label = [i if x == label_now else x for x in label]
    return np.array(label)


def later_round_labels(identity: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pseudo-labels of a later round: each identity cut into clusters of 2-10 images."""
    rng = np.random.default_rng(seed + 1)
    labels = np.empty(len(identity), dtype=np.int64)
    next_label = 0
    by_identity = np.argsort(identity, kind="stable")
    for members in np.split(by_identity, np.flatnonzero(np.diff(identity[by_identity])) + 1):
        members = rng.permutation(members)
        while len(members):
            size = int(rng.integers(2, 11))
            labels[members[:size]] = next_label
            next_label += 1
            members = members[size:]
    return labels


def faiss_knn_pass(features: np.ndarray, k: int = 20) -> None:
    """One exact all-pairs FAISS k-NN search, the yardstick of the merge time."""
    search_base(features, features, k, backend=resolve_backend("auto"))


def bench_size(num_images: int, dim: int, args: argparse.Namespace) -> list[dict]:
    """Measure one size at the first and a later round; one dict per round."""
    features, identity = clustered_features(num_images, dim, seed=args.seed)
    num_merge = int(num_images * args.merge_percent)
    rows = []
    stages = (("first", np.arange(num_images)), ("later", later_round_labels(identity, args.seed)))
    for stage, labels in stages:
        if num_merge > labels.max():
            continue
        knn_times, ours_times, extra_times = [], [], []
        row = {"N": num_images, "round": stage, "C": int(labels.max()) + 1}
        stats: dict = {}
        for _ in range(args.repeat):  # interleaved, so contention hits both alike
            _, seconds, knn_mem = measure(lambda: faiss_knn_pass(features, args.k))
            knn_times.append(seconds)
            ours, seconds, ours_mem = measure(
                lambda: buc_merge(features, labels, num_merge, args.lam, stats=stats))
            ours_times.append(seconds)
            extra_times.append(seconds - stats["search_s"])
        row.update(merge=num_merge, knn_s=min(knn_times), knn_mb=knn_mem, ours_s=min(ours_times),
                   ours_mb=ours_mem, searches=stats["searches"], refined=stats["refined_queries"],
                   extra_s=min(extra_times))
        row["ratio_knn"] = row["ours_s"] / row["knn_s"]
        if num_images <= args.dense_max:
            dense, row["dense_s"], row["dense_mb"] = measure(
                lambda: buc_merge_dense(features, labels, num_merge, args.lam))
            row["same_as_dense"] = bool(np.array_equal(ours, dense))
            del dense
        if num_images <= args.original_max and not args.skip_original:
            orig, row["orig_s"], row["orig_mb"] = measure(
                lambda: buc_merge_original_style(features, labels, num_merge, args.lam))
            row["orig_ratio"] = row["orig_s"] / row["ours_s"]
            row["same_as_orig"] = bool(np.array_equal(ours, orig))
            del orig
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


HEADER = (f"{'N':>6} {'round':>5} {'C':>6} {'merge':>5} | {'knn s':>6} {'ours s':>6} {'ours/knn':>8} "
          f"{'srch':>4} {'refine':>6} {'extra s':>7} | {'orig s':>7} {'orig/ours':>9} | "
          f"{'knn MB':>6} {'ours MB':>7} {'orig MB':>7} | {'dense s':>7} {'=dense':>6} {'=orig':>5}")


def format_row(row: dict) -> str:
    """One table line; '-' where a measurement was skipped."""
    get = row.get
    return (f"{row['N']:>6} {row['round']:>5} {row['C']:>6} {row['merge']:>5} | {row['knn_s']:>6.2f} "
            f"{row['ours_s']:>6.2f} {row['ratio_knn']:>8.2f} {row['searches']:>4} {row['refined']:>6} "
            f"{row['extra_s']:>7.2f} | {_fmt(get('orig_s'), '7.2f'):>7} "
            f"{_fmt(get('orig_ratio'), '9.1f'):>9} | "
            f"{row['knn_mb']:>6.0f} {row['ours_mb']:>7.0f} {_fmt(get('orig_mb'), '7.0f'):>7} | "
            f"{_fmt(get('dense_s'), '7.2f'):>7} {_fmt(get('same_as_dense'), ''):>6} "
            f"{_fmt(get('same_as_orig'), ''):>5}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run every size, print one table."""
    parser = argparse.ArgumentParser(prog="fedureid bench clustering", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, MARKET_TRAIN_IMAGES])
    parser.add_argument("--large", action="store_true",
                        help="also N = 50,000 (~80 s per k-NN pass on 2 cores)")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--merge-percent", type=float, default=0.05)
    parser.add_argument("--lam", type=float, default=0.003)
    parser.add_argument("--k", type=int, default=20, help="k of the reference FAISS pass")
    parser.add_argument("--repeat", type=int, default=1, help="timings are the minimum over repeats")
    parser.add_argument("--dense-max", type=int, default=MARKET_TRAIN_IMAGES,
                        help="largest N checked against the dense reference")
    parser.add_argument("--original-max", type=int, default=MARKET_TRAIN_IMAGES,
                        help="largest N run in the original style")
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learner", choices=("buc", "cc", "all"), default="all",
                        help="which learner's clustering step to time")
    parser.add_argument("--k1", type=int, default=30, help="cc: k-reciprocal neighbours (and k of its yardstick pass)")
    parser.add_argument("--k2", type=int, default=6, help="cc: query expansion")
    parser.add_argument("--eps", type=float, default=0.6, help="cc: DBSCAN eps")
    parser.add_argument("--min-samples", type=int, default=4, help="cc: DBSCAN min_samples")
    parser.add_argument("--no-knn-pass", action="store_true",
                        help="cc: skip the separate k-NN pass (the one inside our step is still timed)")
    parser.add_argument("--camera-penalty", type=float, default=0.0,
                        help="cc: + this to same-camera squared distances (cc.camera_penalty), random camera ids")
    parser.add_argument("--cameras", type=int, default=6, help="cc: camera count with --camera-penalty (Market: 6)")
    args = parser.parse_args(argv)
    if args.camera_penalty < 0 or args.cameras < 1:
        parser.error(f"--camera-penalty must be >= 0 and --cameras >= 1, got {args.camera_penalty}, {args.cameras}")
    sizes = list(args.sizes) + ([50000] if args.large else [])
    import torch  # imported before timing so the original style's first run is fair

    del torch
    info = faiss_info()
    print(f"faiss {info['version']} ({', '.join(info['distributions']) or 'not installed'}), "
          f"backend {info['backend']}, d={args.dim}, lam={args.lam}, merge={args.merge_percent:.0%} of N")
    if args.learner in ("buc", "all"):
        print(HEADER, flush=True)
        for num_images in sizes:
            bench_size(num_images, args.dim, args)
    if args.learner in ("cc", "all"):
        from lab.bench.cc_clustering import run_cc

        run_cc(sizes, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
