"""The best mAP each client reached in any finished run under a folder (an upper bound on a mix).

Reads every `metrics.json` below the given folders (federated runs and standalone ones), takes
each client's best final mAP (and, with --any-round, its best mAP in any round), and prints them
with the run that reached it and the mean over the clients. docs/results.md uses it to say how
far any combination of the measured settings could go on `experiment=real_cpu`:

    .venv/bin/python scripts/best_per_client.py runs --clients cuhk03 viper prid2011 ilids
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def client_maps(metrics: dict, any_round: bool) -> list[tuple[str, float, str]]:
    """(client, mAP, where) for one run: its final figures, or every round's with any_round."""
    if any_round:
        return [(c, float(v["mAP"]), f"round {r['round']}") for r in metrics.get("rounds", [])
                for c, v in r.get("clients", {}).items() if "mAP" in v]
    return [(c, float(v["mAP"]), "final") for c, v in (metrics.get("final") or {}).items()
            if isinstance(v, dict) and "mAP" in v]


def best_per_client(folders: list[Path], clients: list[str], any_round: bool = False) -> dict[str, tuple[float, str]]:
    best: dict[str, tuple[float, str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("metrics.json")):
            try:
                metrics = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                print(f"skipped {path}: {err}", file=sys.stderr)
                continue
            for client, value, where in client_maps(metrics, any_round):
                if client in clients and value > best.get(client, (-1.0, ""))[0]:
                    best[client] = (value, f"{path.parent} ({where})")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--clients", nargs="+", required=True)
    parser.add_argument("--any-round", action="store_true", help="best of every round, not only the final one")
    args = parser.parse_args(argv)
    best = best_per_client(args.folders, args.clients, args.any_round)
    missing = [c for c in args.clients if c not in best]
    if missing:
        parser.error(f"no metrics.json under {[str(f) for f in args.folders]} has client(s) {missing}")
    for client in args.clients:
        print(f"{client:>10}  mAP {best[client][0]:5.1f}  {best[client][1]}")
    print(f"{'mean':>10}  mAP {sum(best[c][0] for c in args.clients) / len(args.clients):5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
