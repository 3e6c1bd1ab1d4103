"""Secure aggregation and differential privacy against the plain mode (all with PU at the edge), per seed.

Runs `fedureid simulate` (Flower's simulation: the real ServerApp and ClientApps exchanging
messages) once per (seed, mode) into its own folder (a rerun skips what is complete), then prints
one Markdown table: final mean rank-1 / mAP, mean round time, what one edge sent up and got
down per round (model arrays in the plain mode; in the secure mode also the protocol's keys,
shares and the masked vector, which is 64-bit per value), and the epsilon spent (DP modes:
`--dp Z...` noise multipliers with `--dp-clip C`).

Run: ``python -m lab.secure_vs_plain --out DIR [key=value ...] [--seeds 0 1 2] [--dp 0.01 0.1] [--dp-clip 10] [--modes M...]``
(overrides right after --out: --seeds, --dp and --modes take every word after them)
(default experiment=demo)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODES = {"plain": ("pu.where=edge",), "secure": ("pu.where=edge", "federation.secure_aggregation=true")}


def modes(dp: list[float], clip: float) -> dict[str, tuple[str, ...]]:
    """The plain and secure modes, and one DP mode (plain, noised) per noise multiplier."""
    return {**MODES, **{f"dp{z:g}": ("pu.where=edge", f"federation.dp_noise_multiplier={z:g}",
                                     f"federation.dp_clipping_norm={clip:g}") for z in dp}}


def row(metrics: dict) -> dict:
    """Final mean rank-1 / mAP, mean round time, mean bytes up / down per edge and round (train phase)."""
    final = metrics["final"]
    trained = [r for r in metrics["rounds"] if r["round"] >= 1]
    per_edge_up, per_edge_down = [], []
    for r in trained:
        edges = sum(1 for m in r["clients"].values() if "num_examples" in m) or 1
        traffic = r.get("traffic", {})
        per_edge_up.append(traffic.get("train_up_bytes", 0) / edges)
        per_edge_down.append(traffic.get("train_down_bytes", 0) / edges)
    eps = [r["dp"]["epsilon"] for r in metrics["rounds"] if "epsilon" in r.get("dp", {})]
    return {"rank1": sum(m["rank1"] for m in final.values()) / len(final),
            "epsilon": eps[-1] if eps else float("nan"),
            "mAP": sum(m["mAP"] for m in final.values()) / len(final),
            "round_s": sum(r["wall_s"] for r in trained) / len(trained),
            "up_MB": sum(per_edge_up) / len(per_edge_up) / 1e6, "down_MB": sum(per_edge_down) / len(per_edge_down) / 1e6}


def _epsilon(eps: float) -> str:
    return "- (no DP)" if eps != eps else f"{eps:.3g}"  # nan: no DP, no bound


def table(out: Path, seeds: list[int], names: list[str] = list(MODES)) -> str:
    lines = ["| mode | seed | mean rank-1 | mean mAP | s / round | MB up / edge / round | MB down / edge / round "
             "| epsilon |", "|---|---|---|---|---|---|---|---|"]
    for mode in names:
        done = []
        for seed in seeds:
            path = out / f"{mode}_s{seed}" / "metrics.json"
            if path.exists():
                done.append(row(json.loads(path.read_text())))
                v = done[-1]
                lines.append(f"| {mode} | {seed} | {v['rank1']:.1f} | {v['mAP']:.1f} | {v['round_s']:.1f} | "
                             f"{v['up_MB']:.2f} | {v['down_MB']:.2f} | {_epsilon(v['epsilon'])} |")
        if len(done) > 1:
            mean = {k: sum(v[k] for v in done) / len(done) for k in done[0]}
            lines.append(f"| {mode} | mean of {len(done)} | {mean['rank1']:.1f} | {mean['mAP']:.1f} | "
                         f"{mean['round_s']:.1f} | {mean['up_MB']:.2f} | {mean['down_MB']:.2f} | {_epsilon(mean['epsilon'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--dp", nargs="*", type=float, default=[], help="noise multipliers of the DP modes")
    parser.add_argument("--dp-clip", type=float, default=10.0, help="federation.dp_clipping_norm of the DP modes")
    parser.add_argument("--modes", nargs="*", default=None, help="run only these modes (plain, secure, dpZ)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (default experiment=demo)")
    args = parser.parse_args(argv)
    shared = args.overrides or ["experiment=demo"]
    args.out.mkdir(parents=True, exist_ok=True)
    runs = modes(args.dp, args.dp_clip)
    unknown = sorted(set(args.modes or []) - set(runs))
    if unknown:  # e.g. an override written after --modes, which takes every word after it
        parser.error(f"unknown mode(s) {unknown}: the modes are {sorted(runs)} (put key=value overrides "
                     "right after --out)")
    chosen = [m for m in runs if args.modes is None or m in args.modes]
    for seed in [] if args.table_only else args.seeds:
        for mode in chosen:
            extra = runs[mode]
            target = args.out / f"{mode}_s{seed}"
            if (target / "metrics.json").exists():
                continue
            cmd = [sys.executable, "-m", "fedureid.cli", "simulate", *shared, f"seed={seed}", f"run_dir={target}",
                   *extra]
            with open(f"{target}.log", "w") as log:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(table(args.out, args.seeds, chosen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
