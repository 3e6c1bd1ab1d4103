"""How far honest edges' updates stand apart: per round, each edge's change norm over the round's median.

Reads the `change_norm` every aggregated edge has in metrics.json and prints the largest
ratio per round and over all runs given; `federation.outlier_k` must stay above it for the
screening never to leave out an honest edge.

Run: ``python -m lab.norm_ratios RUN_DIR [RUN_DIR ...]``
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def ratios(metrics: dict) -> dict[int, dict[str, float]]:
    """{round: {client: change norm / the round's median}} over the clients with a change norm."""
    out = {}
    for rnd in metrics["rounds"]:
        norms = {c: m["change_norm"] for c, m in rnd["clients"].items() if "change_norm" in m}
        if len(norms) >= 3:
            median = statistics.median(norms.values())
            out[rnd["round"]] = {c: n / median for c, n in norms.items()} if median > 0 else {}
    return out


def main(argv: list[str] | None = None) -> int:
    worst = 0.0
    for run_dir in argv if argv is not None else sys.argv[1:]:
        for rnd, by_client in ratios(json.loads((Path(run_dir) / "metrics.json").read_text())).items():
            top = max(by_client, key=by_client.get)
            print(f"{run_dir} round {rnd}: largest {by_client[top]:.2f}x the median ({top}); "
                  + ", ".join(f"{c} {r:.2f}" for c, r in sorted(by_client.items())))
            worst = max(worst, by_client[top])
    print(f"largest honest ratio: {worst:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
