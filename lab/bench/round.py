"""Split each federated round's wall time into local compute and Flower overhead.

Run: ``fedureid bench round [--run-dir DIR] [--experiment smoke] [--slots N] [key=value ...]``.
Without ``--run-dir`` (or when it holds no metrics.json) it first runs
``fedureid simulate`` (default ``experiment=smoke``) into a temporary folder, so
both sides come from the same run. Per round it prints the round's wall time (the
strategy's ``wall_s``: configure_train to the end of aggregate_evaluate), the
clients' compute (``time-compute`` = train + cluster, ``time-eval``), and
overhead = wall - critical compute path, where the critical path is the makespan of
the train phase plus that of the evaluate phase on ``--slots`` parallel workers
(greedy longest-first; simulation runs ``cores / client_cpus`` clients at once).
Overhead holds Flower messaging and serialisation, Ray scheduling, and the
ClientApp's per-message setup (config compose, data scan, model build).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def makespan(times: Sequence[float], slots: int) -> float:
    """Finish time of jobs on `slots` workers, longest first onto the least-loaded one."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    loads = [0.0] * slots
    for t in sorted(times, reverse=True):
        heapq.heapreplace(loads, loads[0] + float(t))
    return max(loads) if times else 0.0


def round_split(record: Mapping[str, Any], slots: int) -> dict[str, float]:
    """Wall, client compute (sum, max, critical path), overhead and its share for one round."""
    clients = record["clients"].values()
    train = [float(m.get("time-compute", 0.0)) for m in clients]
    evaluate = [float(m.get("time-eval", 0.0)) for m in clients]
    per_client = [a + b for a, b in zip(train, evaluate)]
    wall = float(record.get("wall_s", float("nan")))
    critical = makespan(train, slots) + makespan(evaluate, slots)
    overhead = wall - critical
    return {"round": int(record["round"]), "wall": wall, "sum": sum(per_client),
            "max": max(per_client, default=0.0), "critical": critical, "overhead": overhead,
            "share": overhead / wall if wall > 0 else float("nan")}


def split_table(metrics: Mapping[str, Any], slots: int) -> tuple[list[dict[str, float]], str]:
    """Per-round splits and a Markdown table with a totals line."""
    rows = [round_split(r, slots) for r in sorted(metrics["rounds"], key=lambda r: r["round"]) if "wall_s" in r]
    lines = ["| round | wall s | client compute sum s | max s | critical path s | overhead s | overhead share |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['round']} | {r['wall']:.1f} | {r['sum']:.1f} | {r['max']:.1f} | {r['critical']:.1f} | "
                     f"{r['overhead']:.1f} | {100 * r['share']:.0f}% |")
    if rows:
        wall = sum(r["wall"] for r in rows)
        crit = sum(r["critical"] for r in rows)
        lines.append(f"| all | {wall:.1f} | {sum(r['sum'] for r in rows):.1f} | | {crit:.1f} | "
                     f"{wall - crit:.1f} | {100 * (wall - crit) / wall:.0f}% |")
    return rows, "\n".join(lines)


def simulate(run_dir: Path, experiment: str, overrides: Sequence[str]) -> int:
    """Run `fedureid simulate` into `run_dir` (its output streams to this terminal)."""
    cmd = [sys.executable, "-m", "fedureid.cli", "simulate", f"experiment={experiment}",
           f"run_dir={run_dir}", *overrides]
    print("running:", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Print the per-round compute/overhead split of a run (running one first if needed)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", help="read this run's metrics.json (run it there if missing)")
    parser.add_argument("--experiment", default="smoke")
    parser.add_argument("--slots", type=int, default=None,
                        help="clients computing at once (default: CPU cores / federation.client_cpus)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for the simulation")
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="bench_round_"))
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        rc = simulate(run_dir, args.experiment, args.overrides)
        if rc != 0 or not metrics_file.exists():
            print(f"error: the simulation failed (exit {rc}); see {run_dir}", file=sys.stderr)
            return 1
    metrics = json.loads(metrics_file.read_text())
    slots = args.slots or _default_slots(metrics)
    rows, table = split_table(metrics, slots)
    if not rows:
        print(f"error: {metrics_file} has no per-round wall_s", file=sys.stderr)
        return 1
    print(f"\nrun {run_dir}: experiment={metrics.get('experiment')} algorithm={metrics.get('algorithm')} "
          f"clients={len(metrics.get('clients', []))} slots={slots} (cores {os.cpu_count()})\n")
    print(table)
    total = metrics.get("wall_s_simulate")
    if total is not None:
        in_rounds = sum(r["wall"] for r in rows)
        print(f"\nwhole `fedureid simulate`: {total:.1f} s; outside rounds (SuperLink, app start, "
              f"Ray start, final report): {total - in_rounds:.1f} s")
    return 0


def _default_slots(metrics: Mapping[str, Any]) -> int:
    cpus = 1.0
    for item in metrics.get("overrides", []):
        if item.startswith("federation.client_cpus="):
            cpus = float(item.split("=", 1)[1])
    return max(1, int((os.cpu_count() or 1) // max(cpus, 1e-9)))


if __name__ == "__main__":
    raise SystemExit(main())
