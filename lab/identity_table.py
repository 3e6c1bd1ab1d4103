"""Per client of one or more runs: true identities, the edge's estimate and whether it trusted it, and the
final rank-1 / mAP; the last round by default.

Run: ``python -m lab.identity_table RUN_DIR [RUN_DIR ...] [--round N]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def rows(metrics: dict, round_no: int | None = None) -> list[str]:
    """One line per client: true count, estimate (error), trusted, clusters, rank-1, mAP."""
    rec = metrics["rounds"][-1] if round_no is None else next(r for r in metrics["rounds"] if r["round"] == round_no)
    out = []
    for name, m in sorted(rec["clients"].items()):
        true, est = m.get("diag-identities"), m.get("identities-estimate")
        err = f"{100 * (est - true) / true:+.0f}%" if true and est is not None else "-"
        trusted = {1: "yes", 0: "no"}.get(m.get("identities-estimate-trusted"), "-")
        out.append(f"| {name} | {true} | {est if est is not None else '-'} | {err} | {trusted} | {m.get('clusters')} "
                   f"| {m.get('rank1', float('nan')):.1f} | {m.get('mAP', float('nan')):.1f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--round", type=int, default=None)
    args = parser.parse_args(argv)
    for run in args.runs:
        metrics = json.loads((run / "metrics.json").read_text())
        last = metrics["rounds"][-1]["clients"].values()
        print(f"\n{run}: mean rank-1 {statistics.mean(m['rank1'] for m in last):.1f}, "
              f"mean mAP {statistics.mean(m['mAP'] for m in last):.1f}")
        print("| client | identities | estimate | error | trusted | clusters | rank-1 | mAP |\n|---|---|---|---|---|---|---|---|")
        print("\n".join(rows(metrics, args.round)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
