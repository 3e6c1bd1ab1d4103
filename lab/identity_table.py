"""Per client of one or more runs: true identities, the edge's estimate and whether it trusted it, and the
final rank-1 / mAP; the last round by default.

Run: ``python -m lab.identity_table RUN_DIR [RUN_DIR ...] [--round N] [--mean]`` (``--mean``: one table, each
client's estimate in every run and the error of their mean, as the seeds of one setting)
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


def mean_rows(runs: list[dict], round_no: int | None = None) -> list[str]:
    """One line per client over runs (seeds): true count, each run's estimate, their mean and its error."""
    recs = [m["rounds"][-1] if round_no is None else next(r for r in m["rounds"] if r["round"] == round_no)
            for m in runs]
    out = []
    for name in sorted(set().union(*(r["clients"] for r in recs))):
        per = [r["clients"].get(name, {}) for r in recs]
        true = next((m["diag-identities"] for m in per if m.get("diag-identities")), None)
        ests = [m.get("identities-estimate") for m in per]
        shown = " / ".join("-" if e is None else str(e) for e in ests)
        known = [e for e in ests if e is not None]
        mean = statistics.mean(known) if known else None
        err = f"{100 * (mean - true) / true:+.1f}%" if true and mean is not None else "-"
        untrusted = sum(1 for m in per if m.get("identities-estimate-trusted") == 0)
        out.append(f"| {name} | {true} | {shown} | {'-' if mean is None else f'{mean:.1f}'} | {err} | {untrusted} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--round", type=int, default=None)
    parser.add_argument("--mean", action="store_true", help="one table over the runs (seeds of one setting)")
    args = parser.parse_args(argv)
    if args.mean:
        runs = [json.loads((run / "metrics.json").read_text()) for run in args.runs]
        print("| client | identities | estimate per run | mean | error of the mean | runs untrusted |\n|---|---|---|---|---|---|")
        print("\n".join(mean_rows(runs, args.round)))
        return 0
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
