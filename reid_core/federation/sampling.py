"""Which edges train in a round: every edge online, or a share of them drawn by name.

Drawn from the client names, the run's seed and the round, never from Flower's node ids (new
on every SuperNode restart) or an unseeded generator: the same run draws the same edges in
the simulation, in the in-process federation and in a deployment, and again on a rerun.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def train_sample(names: Iterable[str], fraction: float, seed: int, rnd: int, least: int = 1) -> list[str]:
    """The edges of `names` that train in round `rnd`, sorted.

    ceil(fraction x edges) of them, at least `least` (the round's min_clients), at most all;
    fraction 1 keeps every edge without drawing.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if least < 1:
        raise ValueError(f"least must be >= 1, got {least!r}")
    pool = sorted(set(names))
    size = min(len(pool), max(least, math.ceil(fraction * len(pool))))
    if size == len(pool):
        return pool
    rng = np.random.default_rng([seed % 2**32, rnd])
    return sorted(pool[i] for i in rng.choice(len(pool), size=size, replace=False))
