"""Probe: learner=cc's first clustering (sparse Jaccard + DBSCAN) on untrained features.

For each client set (Market layout under --data-root), extracts the ImageNet MobileNetV2 pool
features of the training images (128x64) and clusters them over a k1 x eps grid with the
edge-size rule's min_samples. Prints clusters, outliers, purity and pair precision, computed
from the identities in the file names (reporting only). docs/results.md, learner=cc section.

    .venv/bin/python scripts/probe_cc_clustering.py --clients viper prid2011 ilids cuhk03
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from reid_core.config.schema import ModelConfig
from reid_core.data.market import read_market_layout
from reid_core.eval.pseudo_labels import cluster_purity
from reid_core.eval.ranking import extract_features
from reid_core.learners.cc.clustering import auto_min_samples, cluster_features
from reid_core.models import build_model


def label_quality(labels: np.ndarray, pids: np.ndarray) -> tuple[float, float]:
    """Purity of the clustered images and the share of same-cluster pairs that are one person."""
    clustered = labels >= 0
    if not clustered.any():
        return 0.0, 0.0
    same = pairs = 0.0
    for cluster in np.unique(labels[clustered]):
        _, counts = np.unique(pids[labels == cluster], return_counts=True)
        pairs += counts.sum() * (counts.sum() - 1) / 2
        same += float((counts * (counts - 1) / 2).sum())
    return cluster_purity(labels[clustered], pids[clustered]), float(same / max(pairs, 1.0))


def right_pairs(labels: np.ndarray, pids: np.ndarray) -> int:
    """Same-cluster pairs that are one person (how much right signal the clustering gives)."""
    total = 0
    for cluster in np.unique(labels[labels >= 0]):
        _, counts = np.unique(pids[labels == cluster], return_counts=True)
        total += int((counts * (counts - 1) // 2).sum())
    return total


def cross_camera_clusters(labels: np.ndarray, camids: np.ndarray) -> float:
    """Share of clusters holding images of more than one camera (no identities needed)."""
    clusters = np.unique(labels[labels >= 0])
    if not len(clusters):
        return 0.0
    return float(np.mean([len(np.unique(camids[labels == c])) > 1 for c in clusters]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--weights", default="../shared/weights/mobilenet_v2_imagenet_features.pt")
    parser.add_argument("--clients", nargs="+", default=["viper", "prid2011", "ilids", "cuhk03"])
    parser.add_argument("--k1", type=int, nargs="+", default=[30, 10])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--camera-means", type=int, nargs="+", default=[0], help="0/1: remove each camera's mean")
    parser.add_argument("--penalty", type=float, nargs="+", default=[0.0], help="same-camera distance penalties")
    parser.add_argument("--cache", default="", help="folder to keep the extracted features in (.npy)")
    args = parser.parse_args()
    model = build_model(ModelConfig(arch="mobilenet_v2", weights=args.weights))
    for name in args.clients:
        train = read_market_layout(f"{args.data_root}/{name}").train
        pids = np.array([s.pid for s in train])
        camids = np.array([s.camid for s in train])
        cached = Path(args.cache, f"{name}.npy") if args.cache else None
        if cached is not None and cached.exists():
            feats = np.load(cached)
        else:
            feats = extract_features(model, [s.path for s in train], 128, 64, 64, torch.device("cpu"))
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.save(cached, feats)
        min_samples = auto_min_samples(len(train))
        for k1, eps, means, penalty in itertools.product(args.k1, args.eps, args.camera_means, args.penalty):
            c = cluster_features(feats, k1=min(k1, len(feats) - 1), k2=6, eps=eps, min_samples=min_samples,
                                 camids=camids, camera_means=bool(means), camera_penalty=penalty)
            purity, pair_precision = label_quality(c.labels, pids)
            cross = cross_camera_clusters(c.labels, camids)
            print(f"{name:9s} N={len(feats)} ids={len(set(pids))} k1={k1} eps={eps} means={means} "
                  f"penalty={penalty} min_samples={min_samples}: clusters {c.num_clusters} outliers {c.outliers} "
                  f"({c.outliers / len(feats):.0%}) purity {purity:.2f} pair precision {pair_precision:.2f} "
                  f"right pairs {right_pairs(c.labels, pids)} multi-camera clusters {cross:.2f}", flush=True)


if __name__ == "__main__":
    main()
