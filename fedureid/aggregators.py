"""`federation.aggregation`: robust aggregation rules, Flower's own (`flwr.server.strategy.aggregate`).

The federation core calls the rule on each accepted update's float arrays, in the global
model's order (integer buffers keep their maximum, as in FedAvg). How each weighs edges of
very different sizes:

- `fedavg` (None here): the core's FedAvg, weighted by #images (after screening's bounds);
- `median`: the coordinate-wise median of the updates: every edge counts once, whatever its size;
- `trimmed`: the coordinate-wise mean after cutting int(`federation.trim` x n) of the n updates
  at each end: every edge counts once; at trim 0.2 fewer than 5 updates lose none, and the rule
  is the unweighted mean of what screening let in (experiment=real_cpu's 4 edges);
- `krum`: the one update closest to its n - f - 2 nearest others (f = `federation.num_malicious`):
  one edge's model becomes the global one, whatever the others' sizes;
- `multikrum`: the n - f updates Krum scores best, averaged weighted by #images;
- `bulyan`: Krum picks n - 2f updates, then a trimmed mean around their median: every edge
  counts once; needs n >= 4f + 3 edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from flwr.server.strategy.aggregate import aggregate_bulyan, aggregate_krum, aggregate_median, aggregate_trimmed_avg

from reid_core.config.choices import AGGREGATIONS

Rule = Callable[[Sequence[list[np.ndarray]], Sequence[float]], list[np.ndarray]]


def aggregation_rule(name: str, num_malicious: int = 1, trim: float = 0.2) -> Rule | None:
    """The rule `name` names (None: the core's own FedAvg)."""
    if name not in AGGREGATIONS:
        raise ValueError(f"federation.aggregation: unknown '{name}', choose one of {AGGREGATIONS}")
    if name == "fedavg":
        return None

    def rule(updates: Sequence[list[np.ndarray]], weights: Sequence[float]) -> list[np.ndarray]:
        results = [(list(u), float(w)) for u, w in zip(updates, weights)]
        if name == "median":
            return aggregate_median(results)
        if name == "trimmed":
            return aggregate_trimmed_avg(results, trim)
        if name == "krum":
            return aggregate_krum(results, num_malicious, to_keep=0)
        if name == "multikrum":
            return aggregate_krum(results, num_malicious, to_keep=max(1, len(results) - num_malicious))
        return aggregate_bulyan(results, num_malicious, aggregation_rule=aggregate_krum, to_keep=0)
    return rule


__all__ = ["AGGREGATIONS", "aggregation_rule"]
