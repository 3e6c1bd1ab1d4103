"""Probe: learner=cc's first clustering (sparse Jaccard + DBSCAN) on untrained features.

For each client set (Market layout under --data-root), extracts the ImageNet MobileNetV2 pool
features of the training images (128x64) and clusters them over a k1 x eps grid with the
edge-size rule's min_samples. Prints clusters, outliers, purity and pair precision, computed
from the identities in the file names (reporting only). docs/results.md, learner=cc section.

    .venv/bin/python scripts/probe_cc_clustering.py --clients viper prid2011 ilids cuhk03
"""

from __future__ import annotations

import argparse

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--weights", default="../shared/weights/mobilenet_v2_imagenet_features.pt")
    parser.add_argument("--clients", nargs="+", default=["viper", "prid2011", "ilids", "cuhk03"])
    parser.add_argument("--k1", type=int, nargs="+", default=[30, 10])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    args = parser.parse_args()
    model = build_model(ModelConfig(arch="mobilenet_v2", weights=args.weights))
    for name in args.clients:
        train = read_market_layout(f"{args.data_root}/{name}").train
        pids = np.array([s.pid for s in train])
        feats = extract_features(model, [s.path for s in train], 128, 64, 64, torch.device("cpu"))
        min_samples = auto_min_samples(len(train))
        for k1 in args.k1:
            for eps in args.eps:
                c = cluster_features(feats, k1=min(k1, len(feats) - 1), k2=6, eps=eps, min_samples=min_samples)
                purity, pair_precision = label_quality(c.labels, pids)
                print(f"{name:9s} N={len(feats)} ids={len(set(pids))} k1={k1} eps={eps} min_samples={min_samples}: "
                      f"clusters {c.num_clusters} outliers {c.outliers} ({c.outliers / len(feats):.0%}) "
                      f"purity {purity:.2f} pair precision {pair_precision:.2f}", flush=True)


if __name__ == "__main__":
    main()
