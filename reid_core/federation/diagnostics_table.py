"""Tables of the edges' learning diagnostics (pseudo-label purity, merge precision, NN precision)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# metrics.json key -> short column label; all are shares in [0, 1] except clusters per identity
DIAGNOSTICS = {
    "diag-purity": "purity",
    "diag-merge-precision": "merge prec.",
    "diag-clusters-per-identity": "clusters/ids",
    "diag-nn-precision": "NN prec.",
    "diag-nn-precision-cross-camera": "cross-cam NN",
}


def has_diagnostics(metrics: Mapping[str, Any]) -> bool:
    return any(k in DIAGNOSTICS for r in metrics.get("rounds", []) for m in r["clients"].values() for k in m)


def diagnostics_table(metrics: Mapping[str, Any], clients: Sequence[str]) -> str:
    """Rounds x clients; each cell lists the diagnostics that client reported that round."""
    lines = ["| round | " + " | ".join(clients) + " |", "|---" * (len(clients) + 1) + "|"]
    for rec in metrics.get("rounds", []):
        cells = []
        for name in clients:
            m = rec["clients"].get(name, {})
            parts = [f"{label} {m[k]:.2f}" for k, label in DIAGNOSTICS.items()
                     if isinstance(m.get(k), (int, float)) and not math.isnan(m[k])]
            cells.append(", ".join(parts) or "-")
        lines.append(f"| {rec['round']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diagnostics_markdown(results: Mapping[str, Mapping[str, Any]], clients: Sequence[str]) -> str:
    """One table per variant that reported diagnostics ('' when none did)."""
    out = []
    for variant, metrics in results.items():
        if has_diagnostics(metrics):
            out += [f"### {variant}", "", diagnostics_table(metrics, clients), ""]
    if not out:
        return ""
    return "\n".join([
        "Computed at each edge after it chose its labels, from the identities in the training file names "
        "(reporting only; training never reads them). Purity and clusters/ids describe the labels the next "
        "round trains on; merge precision is the share of this round's merges whose linking image pair is "
        "one person; NN prec. the share of training images whose nearest neighbour, in the features the "
        "merge used, is the same person (cross-cam: the nearest image from another camera).", "", *out]).rstrip()


def mean_diagnostics(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A metrics-like dict whose diagnostics are the mean over `runs` (e.g. seeds) per round and client.

    A value missing or NaN in a run is left out of that mean; rounds are matched by number.
    """
    sums: dict[int, dict[str, dict[str, list[float]]]] = {}
    for metrics in runs:
        for rec in metrics.get("rounds", []):
            per_client = sums.setdefault(int(rec["round"]), {})
            for name, m in rec["clients"].items():
                for key in DIAGNOSTICS:
                    value = m.get(key)
                    if isinstance(value, (int, float)) and not math.isnan(value):
                        per_client.setdefault(name, {}).setdefault(key, []).append(float(value))
    rounds = [{"round": r, "clients": {name: {k: sum(v) / len(v) for k, v in keys.items()}
                                       for name, keys in clients.items()}}
              for r, clients in sorted(sums.items())]
    return {"rounds": rounds}


def diagnostics_over_seeds(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]], clients: Sequence[str]) -> str:
    """One table per variant: each diagnostic's mean over the seeds that ran it ('' when none reported)."""
    variants = list(dict.fromkeys(v for results in per_seed.values() for v in results))
    merged = {v: mean_diagnostics([results[v] for results in per_seed.values() if v in results]) for v in variants}
    return diagnostics_markdown(merged, clients)
