"""Screening before aggregation (pure numpy): what one edge's update may weigh, and which updates stand out.

An edge reports its own example count, and FedAvg weighs its update by it: one edge that
claims ten million images would carry the model alone. And an update scaled up, flipped or
replaced by noise has a change from the model it was sent far larger than the others'.

- `bounded_count`: an edge's count may not grow past `growth` times what it reported when
  first accepted (an honest edge's image count does not jump);
- `capped_shares`: no edge's share of the total weight passes `cap` (the excess goes to the
  others in proportion); a cap at or below 1/n gives every edge the same share;
- `change_norms` / `norm_outliers`: the L2 norm of each update's change from the model that
  edge started from, over its trained weights; more than `k` times the median norm of the round
  is left out. BatchNorm's running statistics are not trained weights but what the forward pass
  measured, and an honest edge can move them far: on the demo at 24 epochs a round, station's
  first BatchNorm variance grew from 4.5 to 73 in one round (its weights' change was the
  round's usual), which made its change over all float arrays 5.5x the round's median. The
  change grows with the steps an edge trains, so an honest edge much larger than the others can
  stand past k too (cuhk03 in experiment=real_cpu: 3.5x; docs/results.md, section 9);
- `impossible_model`: a model no training produces: a BatchNorm running variance below zero
  (a flipped update whose variance grew more than twofold; every model mixing it diverges), or
  the very model the edge started from sent back (nothing learnt: a stale model);
- `screen_reasons`: both together; the median is taken over the updates that are not impossible,
  so a stale edge (change 0) does not pull it down and push an honest edge past k.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Screening:
    """The rules (federation.count_growth, max_share, outlier_k, screen_models); 0 / 1 / 0 / False is off."""

    count_growth: float = 0.0
    max_share: float = 1.0
    outlier_k: float = 0.0
    models: bool = False


def bounded_count(reported: float, first: float | None, growth: float) -> float:
    """The count an update weighs with: `reported`, at most `growth` x the edge's first accepted count."""
    if growth <= 0 or first is None:  # no bound configured, or the edge's first accepted update
        return float(reported)
    return float(min(reported, growth * first))


def capped_shares(weights: Mapping[str, float], cap: float) -> dict[str, float]:
    """Weights whose shares of the total are at most `cap`; the others keep their proportions.

    Water-filling: edges over the cap are fixed at it, the rest of the mass is shared by the
    others in proportion to their weights, repeated until nobody passes the cap.
    """
    total = float(sum(weights.values()))
    if not weights or total <= 0 or cap >= 1.0:
        return {k: float(v) for k, v in weights.items()}
    if cap * len(weights) <= 1.0:  # no share can stay under the cap unless all are equal
        return {k: total / len(weights) for k in weights}
    capped: set[str] = set()
    while True:
        free = {k: float(v) for k, v in weights.items() if k not in capped}
        mass = 1.0 - cap * len(capped)
        free_total = sum(free.values())
        shares = {k: (cap if k in capped else mass * free[k] / free_total) for k in weights}
        over = {k for k, s in shares.items() if k not in capped and s > cap + 1e-12}
        if not over:
            return {k: s * total for k, s in shares.items()}
        capped |= over


VARIANCE_SUFFIX = "running_var"  # torch's BatchNorm buffer names
STATISTICS_SUFFIXES = ("running_mean", VARIANCE_SUFFIX)


def is_trained_weight(key: str, value: np.ndarray) -> bool:
    """A float array that training sets (not a BatchNorm running statistic, not an integer counter)."""
    return np.issubdtype(value.dtype, np.floating) and not key.endswith(STATISTICS_SUFFIXES)


def change_norms(updates: Mapping[str, Arrays], references: Mapping[str, Arrays]) -> dict[str, float]:
    """Per edge, the L2 norm over its trained weights of (update - the model it started from)."""
    norms = {}
    for name, update in updates.items():
        ref = references[name]
        sq = 0.0
        for key, value in update.items():
            if is_trained_weight(key, value):
                diff = value.astype(np.float64) - np.asarray(ref[key], dtype=np.float64)
                sq += float(np.dot(diff.ravel(), diff.ravel()))
        norms[name] = float(np.sqrt(sq))
    return norms


def norm_outliers(norms: Mapping[str, float], k: float, min_updates: int = 3) -> dict[str, str]:
    """Edges whose change norm is more than `k` x the round's median (with at least `min_updates`), and why."""
    if k <= 0 or len(norms) < min_updates:
        return {}
    median = float(np.median(list(norms.values())))
    if median <= 0:
        return {name: f"its change norm {n:.3g} beside a median of 0" for name, n in norms.items() if n > 0}
    return {name: f"its change norm {n:.3g} is {n / median:.1f}x the round's median {median:.3g} (> {k:g}x)"
            for name, n in norms.items() if n > k * median}


def impossible_model(update: Arrays, started: Arrays, change_norm: float) -> str | None:
    """Why no honest training can have produced `update` from `started`, or None."""
    for key, value in update.items():
        if key.endswith(VARIANCE_SUFFIX) and np.issubdtype(value.dtype, np.floating) and bool((value < 0).any()):
            return f"{int((value < 0).sum())} negative BatchNorm variance(s) in {key}"
    if change_norm == 0.0 and any(is_trained_weight(k, v) for k, v in started.items()):
        return "it sent back the weights it started from unchanged (nothing learnt)"
    return None


def screen_reasons(norms: Mapping[str, float], impossible: Mapping[str, str], k: float) -> dict[str, str]:
    """Why each screened edge is left out: its impossible model, else its norm among the possible updates."""
    reasons = dict(impossible)
    reasons.update(norm_outliers({n: v for n, v in norms.items() if n not in impossible}, k))
    return reasons
