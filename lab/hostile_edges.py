"""One hostile edge of each kind against each defence: final mean rank-1 / mAP and round time.

Runs the in-process federation (`lab.inprocess`, same core as the Flower run) for every
(kind, defence) pair, one after another, each in its own folder (a rerun skips what is
complete), then prints one Markdown table: the last round's mean rank-1 / mAP over the edges
that could evaluate, the mean round time and time to aggregate (screening and the rule: what the
defence itself costs), how many edges' evaluations failed. Defences: `none` (FedAvg, screening off),
`default` (the count bound and the impossible-model screen), `screen` (also the outlier screen, k = 3),
and Flower's robust rules (after the count bound and the impossible-model screen). No column changes
`federation.max_share`: the weight cap is the algorithm's (fedureid's 40%, part of how its
Personalized Update works on real sets), so every column runs the same FedUReID and differs in the
defence alone; a lying count in `none` is therefore held at that cap, not at 100%.

Run: ``python -m lab.hostile_edges --out DIR [--edge mall] [--seed 0] [key=value ...] [--kinds ...] [--defences ...]``
(extra key=value, before ``--kinds``, are Hydra overrides for every run, e.g. experiment=real_cpu).
The means over seeds: ``python -m lab.hostile_edges --out DIR --table-only --mean-of DIR_S0 DIR_S1 DIR_S2``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

KINDS = ("honest", "scale", "flip", "noise", "stale", "count")
OFF = ("federation.count_growth=0", "federation.outlier_k=0", "federation.screen_models=false")
# Every column names the outlier screen's k, so that a column means the same whatever conf/ defaults to.
BOUNDS = ("federation.outlier_k=0",)  # the count bound and the impossible-model screen (conf/ defaults)
DEFENCES = {
    "none": OFF,
    "default": BOUNDS,
    "screen": ("federation.outlier_k=3",),
    **{rule: (f"federation.aggregation={rule}", *BOUNDS) for rule in ("median", "trimmed", "krum", "multikrum")},
}


def run_dir(out: Path, kind: str, defence: str) -> Path:
    return out / f"{kind}_{defence}"


def overrides(kind: str, defence: str, edge: str) -> list[str]:
    return [*DEFENCES[defence], *([] if kind == "honest" else [f"+misbehave.{edge}={kind}"])]


def finished_metrics(metrics_path: Path) -> dict | None:
    """The run's metrics once its last round is done, else None: metrics.json is written after every
    round, so a run cut off mid-way (its folder kept) must neither be skipped by a rerun nor enter the table."""
    if not metrics_path.exists():
        return None
    metrics = json.loads(metrics_path.read_text())
    done = max((r["round"] for r in metrics["rounds"]), default=0)
    return metrics if done >= metrics["rounds_total"] else None


def values(metrics: dict) -> dict:
    """The last round's mean rank-1 / mAP over the edges that evaluated (None when none could), the
    mean round time and aggregation time (screening + rule), failures, updates screening left out."""
    last = max(metrics["rounds"], key=lambda r: r["round"])
    evaluated = [m for m in last["clients"].values() if "rank1" in m]
    walls = [r["wall_s"] for r in metrics["rounds"] if "wall_s" in r]
    aggs = [r["aggregate_s"] for r in metrics["rounds"] if "aggregate_s" in r]
    return {"rank1": sum(m["rank1"] for m in evaluated) / len(evaluated) if evaluated else None,
            "mAP": sum(m["mAP"] for m in evaluated) / len(evaluated) if evaluated else None,
            "wall": sum(walls) / len(walls) if walls else None,
            "agg": sum(aggs) / len(aggs) if aggs else None,
            "failed": sum(1 for r in last["rejected"] if r["phase"] == "evaluate"),
            "screened": sum(1 for rnd in metrics["rounds"] for r in rnd["rejected"] if r["phase"] == "screening")}


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def summary(runs: list[dict]) -> str:
    """One cell: the means over seeds of `values`; a seed where every edge failed is named, not averaged."""
    wall, agg = _mean([v["wall"] for v in runs]), _mean([v["agg"] for v in runs])
    cost = (f"{wall:.0f} s" if wall is not None else "-") + (f"; {1000 * agg:.0f} ms" if agg is not None else "")
    ok = [v for v in runs if v["rank1"] is not None]
    seeds = f" of {len(runs)} seeds" if len(runs) > 1 else ""
    if not ok:
        return f"every edge failed ({cost})" + (f", {len(runs)}{seeds}" if seeds else "")
    head = f"{_mean([v['rank1'] for v in ok]):.1f} / {_mean([v['mAP'] for v in ok]):.1f} ({cost})"
    failed, screened = sum(v["failed"] for v in runs), sum(v["screened"] for v in runs)
    return (head + (f", every edge failed in {len(runs) - len(ok)}{seeds}" if len(ok) < len(runs) else "")
            + (f", {failed} failed" if failed else "") + (f", {screened} screened" if screened else ""))


def table(outs: Path | list[Path]) -> str:
    """The Markdown table of one folder, or of the means over several (one per seed)."""
    outs = [outs] if isinstance(outs, Path) else outs
    lines = ["| edge sends | " + " | ".join(DEFENCES) + " |", "|---" * (len(DEFENCES) + 1) + "|"]
    for kind in KINDS:
        cells = []
        for defence in DEFENCES:
            paths = [run_dir(out, kind, defence) / "metrics.json" for out in outs]
            runs = [values(metrics) for metrics in map(finished_metrics, paths) if metrics is not None]
            cells.append(summary(runs) if len(runs) == len(outs) else "-")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--edge", default="mall", help="the client that misbehaves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table-only", action="store_true", help="print the table of what is done")
    parser.add_argument("--mean-of", nargs="+", type=Path, default=None,
                        help="with --table-only: the means over these folders (one per seed) instead of --out")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="rows to run")
    parser.add_argument("--defences", nargs="+", choices=list(DEFENCES), default=list(DEFENCES), help="columns to run")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (default experiment=demo)")
    args = parser.parse_args(argv)
    shared = args.overrides or ["experiment=demo"]
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in ([] if args.table_only else args.kinds):
        for defence in args.defences:
            target = run_dir(args.out, kind, defence)
            if finished_metrics(target / "metrics.json") is not None:
                continue
            cmd = [sys.executable, "-m", "lab.inprocess", *shared, f"seed={args.seed}", f"run_dir={target}",
                   *overrides(kind, defence, args.edge)]
            with open(f"{target}.log", "w") as log:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(table(args.mean_of if args.table_only and args.mean_of else args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
