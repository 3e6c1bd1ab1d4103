"""Calibrate the synthetic federation: cross-camera rank-1 of simple features per client.

Features: raw pixels, region colour histograms (gray-world normalised, "oracle-ish"),
an untrained tiny CNN (random init), and the same CNN trained with identity labels on
the pooled train splits (an upper reference the unsupervised trainer should approach).

    PYTHONPATH=. .venv/bin/python lab/synth_difficulty.py --preset demo --epochs 8
    PYTHONPATH=. .venv/bin/python lab/synth_difficulty.py --camera-strength 1 --epochs 0

Rank-1 on 50-60 queries per client moves by up to 2 points per query, and each client's
difficulty depends on its randomly drawn cameras: compare several seeds before retuning.
lab/demo_results.py measures the README's references with the demo's own network.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import fields

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from reid_core.data import (
    SynthDifficulty,
    EvalImageDataset,
    UnlabeledImageDataset,
    collate_skip_none,
    eval_transform,
    generate_federation,
    load_rgb,
    preset_clients,
    read_market_layout,
    train_transform,
    with_difficulty,
)


def rank1(qf: np.ndarray, gf: np.ndarray, q_pids, g_pids, q_cams, g_cams) -> float:
    """Market protocol rank-1: drop gallery entries with the query's pid and camera."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    dist = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    hits = []
    for i in range(len(qf)):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        order = np.argsort(dist[i][keep], kind="stable")
        hits.append(g_pids[keep][order[0]] == q_pids[i])
    return float(np.mean(hits))


def tiny_cnn(num_classes: int = 0) -> nn.Module:
    layers: list[nn.Module] = []
    c_in = 3
    for c_out in (32, 64, 128, 256):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2) if c_out < 256 else nn.Identity()]
        c_in = c_out
    body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(body, nn.Linear(256, num_classes)) if num_classes else body


@torch.no_grad()
def cnn_features(body: nn.Module, paths: list[str], h: int, w: int) -> np.ndarray:
    body.eval()
    loader = DataLoader(EvalImageDataset(paths, eval_transform(h, w)), batch_size=128,
                        collate_fn=collate_skip_none)
    feats = torch.cat([body(x) for x, _ in loader])
    return nn.functional.normalize(feats, dim=1).numpy()


def histogram_features(paths: list[str], bins: int = 4, regions: int = 4) -> np.ndarray:
    feats = []
    for p in paths:
        x = np.asarray(load_rgb(p), np.float32)
        x = x / (x.reshape(-1, 3).mean(0) + 1e-3) * 100  # gray-world: undo colour cast and gain
        q = np.clip((x / 200 * bins).astype(int), 0, bins - 1)
        code = q[..., 0] * bins * bins + q[..., 1] * bins + q[..., 2]
        parts = np.array_split(code, regions, axis=0)
        f = np.concatenate([np.bincount(r.ravel(), minlength=bins**3) / r.size for r in parts])
        feats.append(np.sqrt(f))
    f = np.stack(feats)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def train_supervised(datasets, h: int, w: int, epochs: int) -> nn.Module:
    paths, labels, offset = [], [], 0
    for d in datasets:  # pids relabelled per client into one label space
        pids = sorted({s.pid for s in d.train})
        lut = {p: i + offset for i, p in enumerate(pids)}
        paths += [s.path for s in d.train]
        labels += [lut[s.pid] for s in d.train]
        offset += len(pids)
    model = tiny_cnn(offset)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(UnlabeledImageDataset(paths, labels, train_transform(h, w)),
                        batch_size=32, shuffle=True, collate_fn=collate_skip_none)
    for _ in range(epochs):
        model.train()
        for x, y, _ in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    knob_names = [f.name for f in fields(SynthDifficulty)]
    for knob in knob_names:
        ap.add_argument("--" + knob.replace("_", "-"), type=float, default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    knobs = {k: v for k, v in vars(args).items() if v is not None and k in knob_names}
    spec = with_difficulty(preset_clients(args.preset), **knobs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        info = generate_federation(tmp, seed=args.seed, spec=spec)
        print(f"generated {args.preset} in {time.time() - t0:.1f}s, knobs={knobs or 'default'}")
        datasets = [read_market_layout(f"{tmp}/{c['name']}") for c in info["clients"]]
        t0 = time.time()
        supervised = train_supervised(datasets, args.height, args.width, args.epochs)
        print(f"supervised tiny CNN: {args.epochs} epochs in {time.time() - t0:.1f}s "
              "(0 epochs: sup-cnn = another random init)")
        random_body = tiny_cnn()
        print(f"{'client':<9} {'#q':>4} {'#g':>4} | rank-1: {'pixels':>6} {'colhist':>7} "
              f"{'rand-cnn':>8} {'sup-cnn':>7}")
        rows = []
        for d in datasets:
            qp, gp = [s.path for s in d.query], [s.path for s in d.gallery]
            meta = ([s.pid for s in d.query], [s.pid for s in d.gallery],
                    [s.camid for s in d.query], [s.camid for s in d.gallery])
            pix = lambda ps: np.stack([np.asarray(load_rgb(p), np.float32).ravel() for p in ps])
            pq, pg = pix(qp), pix(gp)
            pq /= np.linalg.norm(pq, axis=1, keepdims=True)
            pg /= np.linalg.norm(pg, axis=1, keepdims=True)
            r = [rank1(pq, pg, *meta),
                 rank1(histogram_features(qp), histogram_features(gp), *meta),
                 rank1(cnn_features(random_body, qp, args.height, args.width),
                       cnn_features(random_body, gp, args.height, args.width), *meta),
                 rank1(cnn_features(supervised, qp, args.height, args.width),
                       cnn_features(supervised, gp, args.height, args.width), *meta)]
            rows.append(r)
            print(f"{d.name:<9} {len(qp):4d} {len(gp):4d} |         "
                  + " ".join(f"{100 * v:{n}.1f}" for v, n in zip(r, (6, 7, 8, 7))))
        mean = np.mean(rows, axis=0)
        print(f"{'mean':<19} |         " + " ".join(f"{100 * v:{n}.1f}" for v, n in zip(mean, (6, 7, 8, 7))))


if __name__ == "__main__":
    main()
