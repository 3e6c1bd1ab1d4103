"""Does FedUReID learn? Round curves over seeds and the checks a ReID researcher asks first.

From the ablation's per-seed results (variant -> metrics.json) this computes, mean over
seeds: each variant's client-mean rank-1 per round (round 0 = the untrained network), its
best round and how far the final round fell from it (erosion); and whether FedUReID is
above the untrained network on every client, above the baseline (mean and per client) and
above standalone training on every client; with the cluster-contrast rows, the same for
cc_fedureid and the comparison of the two learners (mAP ratio, wall time). Pure
functions on the metrics dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Results = Mapping[str, Mapping[str, Any]]  # variant -> metrics.json of one seed

EROSION_LIMIT = 1.0  # points of mean rank-1 the final round may lie below the best round
MIN_CLIENTS_ABOVE_BASELINE = 3 / 4  # share of clients where FedUReID's rank-1 must beat the baseline's
CC_MAP_RATIO = 1.5  # the bar for cluster-contrast: cc_fedureid's mean mAP over BUC FedUReID's
CC_TIME_TOLERANCE = 0.10  # and the same time budget as BUC FedUReID, within 10%


def _nanmean(values: Sequence[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def round_value(metrics: Mapping[str, Any], rnd: int, client: str, metric: str) -> float:
    """A client's metric after round `rnd` (0 = the untrained network, from `initial`); NaN when absent."""
    if rnd == 0:
        return float(metrics.get("initial", {}).get(client, {}).get(metric, math.nan))
    for rec in metrics.get("rounds", []):
        if rec["round"] == rnd and metric in rec["clients"].get(client, {}):
            return float(rec["clients"][client][metric])
    return math.nan


def final_value(metrics: Mapping[str, Any], client: str, metric: str) -> float:
    return float(metrics.get("final", {}).get(client, {}).get(metric, math.nan))


def seed_mean(per_seed: Mapping[int, Results], variant: str, client: str, metric: str, rnd: int | None = None) -> float:
    """Mean over the seeds that ran `variant` of one client's final (or round-`rnd`) value."""
    runs = [r[variant] for r in per_seed.values() if variant in r]
    pick = (lambda m: final_value(m, client, metric)) if rnd is None else (lambda m: round_value(m, rnd, client, metric))
    return _nanmean([pick(m) for m in runs])


def round_curve(per_seed: Mapping[int, Results], variant: str, clients: Sequence[str], rounds: int,
                metric: str = "rank1") -> list[float]:
    """Client-mean `metric` after rounds 0..rounds, mean over seeds (NaN where a round is missing)."""
    return [_nanmean([seed_mean(per_seed, variant, c, metric, rnd) for c in clients]) for rnd in range(rounds + 1)]


def untrained(per_seed: Mapping[int, Results], client: str, metric: str) -> float:
    """Round-0 value, mean over seeds, from whichever federated variant recorded it."""
    for variant in dict.fromkeys(v for r in per_seed.values() for v in r):
        value = seed_mean(per_seed, variant, client, metric, rnd=0)
        if not math.isnan(value):
            return value
    return math.nan


def curves_markdown(per_seed: Mapping[int, Results], clients: Sequence[str], rounds: int, metric: str = "rank1") -> str:
    """Variants x rounds table of the client-mean metric, with best round and erosion (best - final)."""
    head = "| method | " + " | ".join(f"r{r}" for r in range(rounds + 1)) + " | best round | best - final |"
    lines = [head, "|---" * (rounds + 4) + "|"]
    for variant in dict.fromkeys(v for r in per_seed.values() for v in r):
        curve = round_curve(per_seed, variant, clients, rounds, metric)
        trained = [(v, r) for r, v in enumerate(curve) if r > 0 and not math.isnan(v)]
        cells = " | ".join("-" if math.isnan(v) else f"{v:.1f}" for v in curve)
        if trained:
            best, best_round = max(trained)
            lines.append(f"| {variant} | {cells} | {best_round} | {best - trained[-1][0]:.1f} |")
        else:
            lines.append(f"| {variant} | {cells} | - | - |")
    return "\n".join(lines)


def learning_checks(per_seed: Mapping[int, Results], clients: Sequence[str], rounds: int,
                    method: str = "fedureid", baseline: str = "baseline",
                    standalone: str = "standalone") -> list[tuple[str, str, bool | None]]:
    """(check, measured, met) rows, all on means over seeds; met is None when a variant is missing."""
    have = {v for r in per_seed.values() for v in r}
    if method not in have:
        return []
    rows: list[tuple[str, str, bool | None]] = []

    def mean(variant: str, metric: str) -> float:  # client mean of the seed means
        return _nanmean([seed_mean(per_seed, variant, c, metric) for c in clients])

    below = [f"{c} {metric}" for c in clients for metric in ("rank1", "mAP")
             if not seed_mean(per_seed, method, c, metric) > untrained(per_seed, c, metric)]
    rows.append((f"{method} above the untrained network (round 0) on every client, rank-1 and mAP",
                 "all above" if not below else "not above: " + ", ".join(below), not below))
    if baseline in have:
        for metric, label in (("rank1", "rank-1"), ("mAP", "mAP")):
            a, b = mean(method, metric), mean(baseline, metric)
            rows.append((f"{method} above {baseline}, mean {label}", f"{a:.1f} vs {b:.1f}", a > b))
        won = [c for c in clients if seed_mean(per_seed, method, c, "rank1") > seed_mean(per_seed, baseline, c, "rank1")]
        need = math.ceil(MIN_CLIENTS_ABOVE_BASELINE * len(clients))
        rows.append((f"{method} above {baseline} in rank-1 on at least {need} of {len(clients)} clients",
                     f"{len(won)} ({', '.join(won) or 'none'})", len(won) >= need))
    else:
        rows.append((f"{method} above {baseline}", f"{baseline} not run", None))
    if standalone in have:
        lost = [c for c in clients if not seed_mean(per_seed, method, c, "rank1") > seed_mean(per_seed, standalone, c, "rank1")]
        rows.append((f"{method} above {standalone} in rank-1 on every client",
                     "all above" if not lost else "not above on " + ", ".join(lost), not lost))
    curve = round_curve(per_seed, method, clients, rounds)
    trained = [v for v in curve[1:] if not math.isnan(v)]
    if trained:
        drop = max(trained) - trained[-1]
        rows.append((f"no erosion ({method}): final mean rank-1 within {EROSION_LIMIT:g} point of the best round",
                     f"final {trained[-1]:.1f}, best {max(trained):.1f}", drop <= EROSION_LIMIT))
    return rows


def wall_seconds(metrics: Mapping[str, Any]) -> float:
    """A run's wall time: the simulation's (federated) or the summed standalone runs'."""
    return float(metrics.get("wall_s_simulate", metrics.get("wall_s", math.nan)))


def learner_checks(per_seed: Mapping[int, Results], clients: Sequence[str],
                   buc: str = "fedureid", cc: str = "cc_fedureid") -> list[tuple[str, str, bool | None]]:
    """The bar for the cluster-contrast learner against BUC FedUReID, means over seeds:
    mean mAP at least CC_MAP_RATIO x BUC's, at a wall time within CC_TIME_TOLERANCE above BUC's."""
    have = {v for r in per_seed.values() for v in r}
    if cc not in have or buc not in have:
        return []
    a, b = (_nanmean([seed_mean(per_seed, v, c, "mAP") for c in clients]) for v in (cc, buc))
    rows: list[tuple[str, str, bool | None]] = [
        (f"{cc} mean mAP at least {CC_MAP_RATIO:g}x {buc}'s", f"{a:.1f} vs {b:.1f} ({_ratio(a, b)})",
         None if math.isnan(a) or math.isnan(b) else a >= CC_MAP_RATIO * b)]
    ta, tb = (_nanmean([wall_seconds(r[v]) for r in per_seed.values() if v in r]) for v in (cc, buc))
    rows.append((f"{cc} wall time at most {buc}'s + {CC_TIME_TOLERANCE:.0%}", f"{ta:.0f} s vs {tb:.0f} s "
                 f"({_ratio(ta, tb)})", None if math.isnan(ta) or math.isnan(tb) else ta <= (1 + CC_TIME_TOLERANCE) * tb))
    return rows


def _ratio(a: float, b: float) -> str:
    """a / b as '1.23x'; a zero or missing reference reads as such rather than raising."""
    if math.isnan(a) or math.isnan(b):
        return "missing"
    return f"{a / b:.2f}x" if b > 0 else "reference 0"


def checks_markdown(rows: Sequence[tuple[str, str, bool | None]]) -> str:
    lines = ["| check (mean over seeds) | measured | met |", "|---|---|---|"]
    for check, measured, met in rows:
        lines.append(f"| {check} | {measured} | {'-' if met is None else 'yes' if met else 'no'} |")
    return "\n".join(lines)
