"""Regenerate the README's demo section: references and FedUReID vs baseline on the demo clients.

One run measures, on the demo federation (`experiment=demo`, its synthetic clients):
- untrained: the demo's network at its initialisation (what every run's round 0 sees);
- colour histogram: region colour histograms after gray-world normalisation (no learning);
- supervised ceiling: the demo's network trained *with* identity labels on all clients'
  train splits pooled (an upper reference the unsupervised learners cannot see);
- baseline, FedUReID as published (`paper`, the demo's default algorithm) and FedUReID with the
  settings measured best on real pedestrians (`fedureid`): `fedureid ablation
  variants=[baseline,paper,fedureid] seeds=[...]`
  (resumable: finished runs are read, not rerun), final rank-1/mAP mean +- std over seeds,
  and FedUReID's per-client round 0 vs final rank-1 for each seed.

    .venv/bin/python lab/demo_results.py                  # -> runs/demo_results/demo_results.md
    .venv/bin/python lab/demo_results.py --seeds 0 --supervised-epochs 2   # quicker look

Prints Markdown to paste under "What the demo shows".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lab.synth_difficulty import histogram_features
from reid_core.config.settings import load_settings
from reid_core.data import UnlabeledImageDataset, collate_skip_none, read_market_layout, train_transform
from reid_core.data.federation import ensure_federation
from reid_core.eval.ranking import evaluate_features, evaluate_model
from reid_core.models import build_model


def colour_histogram(ds) -> dict[str, float]:
    q, g = ds.query, ds.gallery
    ids = lambda ss: (np.array([s.pid for s in ss]), np.array([s.camid for s in ss]))
    (qp, qc), (gp, gc) = ids(q), ids(g)
    return evaluate_features(histogram_features([s.path for s in q]), histogram_features([s.path for s in g]),
                             qp, gp, qc, gc)


def supervised(settings, datasets, epochs: int, seed: int) -> nn.Module:
    """The demo's network + a linear identity classifier, trained with labels (pooled clients)."""
    torch.manual_seed(seed)
    paths, labels, offset = [], [], 0
    for ds in datasets:  # identities relabelled per client into one label space
        lut = {p: i + offset for i, p in enumerate(sorted({s.pid for s in ds.train}))}
        paths += [s.path for s in ds.train]
        labels += [lut[s.pid] for s in ds.train]
        offset += len(lut)
    net = build_model(settings.model)
    head = nn.Linear(net.embed_dim_out, offset)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    img = settings.image
    loader = DataLoader(UnlabeledImageDataset(paths, labels, train_transform(img.height, img.width, img.photometric)),
                        batch_size=img.batch_size, shuffle=True, drop_last=True, collate_fn=collate_skip_none)
    net.train()
    for _ in range(epochs):
        for x, y, _ in loader:
            emb, _pooled = net(x)
            loss = nn.functional.cross_entropy(head(emb) * 10.0, y)  # cosine-like logits (unit embedding)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def run_ablation(run_dir: Path, seeds: list[int]) -> None:
    cli = Path(sys.executable).parent / "fedureid"
    cmd = [str(cli), "ablation", "experiment=demo", f"run_dir={run_dir}", "variants=[baseline,paper,fedureid]",
           f"seeds=[{','.join(map(str, seeds))}]"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def mean_std(values) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/demo_results")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--supervised-epochs", type=int, default=15)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    run_dir = Path(args.run_dir).resolve()
    settings = load_settings(["experiment=demo"], check_data=False)
    ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)
    clients = list(settings.clients)
    datasets = [read_market_layout(settings.client_dir(c)) for c in clients]
    device = torch.device("cpu")

    t0 = time.time()
    torch.manual_seed(0)
    untrained = build_model(settings.model)
    refs = {"untrained network": [evaluate_model(untrained, d.query, d.gallery, settings.image, device)
                                  for d in datasets],
            "colour histogram": [colour_histogram(d) for d in datasets]}
    net = supervised(settings, datasets, args.supervised_epochs, seed=0)
    refs[f"supervised ceiling ({args.supervised_epochs} epochs, labels)"] = [
        evaluate_model(net, d.query, d.gallery, settings.image, device) for d in datasets]
    t_refs = time.time() - t0

    t0 = time.time()
    run_ablation(run_dir / "ablation", seeds)
    t_runs = time.time() - t0
    runs = {v: [json.loads((run_dir / "ablation" / f"seed_{s}" / v / "metrics.json").read_text()) for s in seeds]
            for v in ("baseline", "paper", "fedureid")}

    out = []
    head = "| | " + " | ".join(clients) + " | mean |\n|---|" + "---|" * (len(clients) + 1)
    out.append(f"Final rank-1 (%) per client ({', '.join(f'{len(d.query)}' for d in datasets)} queries), "
               f"seeds {seeds}; mean ± std over seeds (references: one measurement):\n")
    out.append(head)
    for name, res in refs.items():
        r1 = [r["rank1"] for r in res]
        out.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in r1) + f" | {np.mean(r1):.1f} |")
    for variant, ms in runs.items():
        cells = [mean_std([m["final"][c]["rank1"] for m in ms]) for c in clients]
        means = [np.mean([m["final"][c]["rank1"] for c in clients]) for m in ms]
        out.append(f"| {variant} | " + " | ".join(cells) + f" | {mean_std(means)} |")
    out.append("\nMean mAP (%) over clients: " + ", ".join(
        f"{name} {np.mean([r['mAP'] for r in res]):.1f}" for name, res in refs.items()) + "; " + ", ".join(
        f"{v} {mean_std([np.mean([m['final'][c]['mAP'] for c in clients]) for m in ms])}" for v, ms in runs.items()))
    out.append("\nFedUReID as published (`paper`), rank-1 (%) at round 0 (untrained, as received) and after the last round, per seed:\n")
    out.append("| seed | round | " + " | ".join(clients) + " | mean |\n|---|---|" + "---|" * (len(clients) + 1))
    for s, m in zip(seeds, runs["paper"]):
        for label, table in (("0", m["initial"]), (str(m["rounds_total"]), m["final"])):
            r1 = [table[c]["rank1"] for c in clients]
            out.append(f"| {s} | {label} | " + " | ".join(f"{v:.1f}" for v in r1) + f" | {np.mean(r1):.1f} |")
    walls = {v: [m.get("wall_s_simulate", float("nan")) for m in ms] for v, ms in runs.items()}
    out.append(f"\nTimes: references {t_refs:.0f} s; `fedureid simulate` per run (Ray start-up included): "
               + ", ".join(f"{v} {min(w):.0f}-{max(w):.0f} s" for v, w in walls.items())
               + f"; this script's ablation step {t_runs:.0f} s (finished runs are not rerun).")
    text = "\n".join(out) + "\n"
    (run_dir / "demo_results.md").write_text(text)
    print("\n" + text)
    print(f"written: {run_dir / 'demo_results.md'}")


if __name__ == "__main__":
    main()
