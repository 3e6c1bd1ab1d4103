"""Edges that misbehave on purpose, for tests and for users weighing a defence: never on by default.

An edge is told what to do by its node config (`misbehave="scale"`, deployment) or by the
config key `misbehave` ({client: kind}, simulation). What it then sends instead of its
honest update (float arrays only; integer buffers stay as trained):

- `scale`: the model it received plus 100 x its change;
- `flip`: the model it received minus its change (the sign flipped);
- `noise`: Gaussian noise with each array's own mean and spread (seeded by round);
- `stale`: the model it received, untrained (a stale model sent again);
- `count`: its honest model, claiming 10,000,000 training images.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reid_core.config.choices import MISBEHAVIOURS as KINDS
SCALE = 100.0
CLAIMED_COUNT = 10_000_000

Arrays = Mapping[str, np.ndarray]


def misbehave(kind: str, trained: Arrays, received: Arrays, num_examples: int,
              seed: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """(arrays, example count) an edge told to misbehave as `kind` sends instead of (trained, num_examples)."""
    if kind not in KINDS:
        raise ValueError(f"misbehave: unknown kind {kind!r}; choose one of {KINDS}")
    if kind == "count":
        return dict(trained), CLAIMED_COUNT
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key, value in trained.items():
        if not np.issubdtype(value.dtype, np.floating):
            out[key] = value
            continue
        start = np.asarray(received[key], dtype=np.float64)
        change = value.astype(np.float64) - start
        if kind == "scale":
            new = start + SCALE * change
        elif kind == "flip":
            new = start - change
        elif kind == "noise":
            new = rng.normal(float(value.mean()), float(value.std()) + 1e-8, size=value.shape)
        else:  # stale
            new = start
        out[key] = new.astype(value.dtype)
    return out, num_examples
