"""One hostile edge of each kind against each defence: final mean rank-1 / mAP and round time.

Runs the in-process federation (`lab.inprocess`, same core as the Flower run) for every
(kind, defence) pair, one after another, each in its own folder (a rerun skips what is
complete), then prints one Markdown table. Defences: `none` (FedAvg, screening off),
`screen` (outlier_k and max_share on), and Flower's robust rules.

Run: ``python -m lab.hostile_edges --out DIR [--edge mall] [--seed 0] [key=value ...]``
(extra key=value are Hydra overrides for every run, e.g. experiment=real_cpu).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

KINDS = ("honest", "scale", "flip", "noise", "stale", "count")
OFF = ("federation.count_growth=0", "federation.max_share=1.0", "federation.outlier_k=0")
DEFENCES = {
    "none": OFF,
    "screen": ("federation.outlier_k=3", "federation.max_share=0.5"),
    **{rule: (f"federation.aggregation={rule}",) for rule in ("median", "trimmed", "krum", "multikrum")},
}


def run_dir(out: Path, kind: str, defence: str) -> Path:
    return out / f"{kind}_{defence}"


def overrides(kind: str, defence: str, edge: str) -> list[str]:
    return [*DEFENCES[defence], *([] if kind == "honest" else [f"+misbehave.{edge}={kind}"])]


def summary(metrics: dict) -> tuple[float, float, float]:
    """(mean final rank-1, mean final mAP, mean round wall seconds)."""
    final = metrics["final"].values()
    walls = [r["wall_s"] for r in metrics["rounds"] if "wall_s" in r]
    return (sum(m["rank1"] for m in final) / len(final), sum(m["mAP"] for m in final) / len(final),
            sum(walls) / max(len(walls), 1))


def table(out: Path) -> str:
    lines = ["| edge sends | " + " | ".join(DEFENCES) + " |", "|---" * (len(DEFENCES) + 1) + "|"]
    for kind in KINDS:
        cells = []
        for defence in DEFENCES:
            path = run_dir(out, kind, defence) / "metrics.json"
            if path.exists():
                r1, m, wall = summary(json.loads(path.read_text()))
                cells.append(f"{r1:.1f} / {m:.1f} ({wall:.0f} s)")
            else:
                cells.append("-")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--edge", default="mall", help="the client that misbehaves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table-only", action="store_true", help="print the table of what is done")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (default experiment=demo)")
    args = parser.parse_args(argv)
    shared = args.overrides or ["experiment=demo"]
    for kind in ([] if args.table_only else KINDS):
        for defence in DEFENCES:
            target = run_dir(args.out, kind, defence)
            if (target / "metrics.json").exists():
                continue
            cmd = [sys.executable, "-m", "lab.inprocess", *shared, f"seed={args.seed}", f"run_dir={target}",
                   *overrides(kind, defence, args.edge)]
            with open(f"{target}.log", "w") as log:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(table(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
