"""Differential privacy of the global model (pure numpy): clipped changes and Gaussian noise.

Client-level DP as in DP-FedAvg (McMahan et al., 2018; Flower's DifferentialPrivacy*FixedClipping):
each edge's change from the global model it received is scaled to at most L2 norm C (at the edge,
and again at the cloud where it sees single updates), and the aggregate gets Gaussian noise. The
aggregate is the weighted mean sum_k w_k d_k / sum_k w_k with weights the edges' image counts;
removing one edge's change moves it by at most C * max_k w_k / sum_k w_k, so the noise's standard
deviation is z * C * max share (z: the noise multiplier; equal weights give Flower's z * C / K).
The privacy spent is counted by Flower's accountant in the ServerApp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reid_core.federation.screening import VARIANCE_SUFFIX
from reid_core.federation.secure_sum import clip_change, float_keys

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Privacy:
    """federation.dp_*: noise multiplier z (0: off), clipping norm C, and the noise's seed."""

    noise_multiplier: float = 0.0
    clipping_norm: float = 1.0
    seed: int = 0

    @property
    def on(self) -> bool:
        return self.noise_multiplier > 0

    def rng(self, rnd: int) -> np.random.Generator:
        """One stream per round: a resumed run draws the same noise."""
        return np.random.default_rng([self.seed, rnd])


def clip_model(model: Arrays, reference: Arrays, max_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """`model` with its float arrays' change from `reference` scaled to at most L2 norm `max_norm`
    (integer buffers as they are), and the change's norm before clipping."""
    keys = float_keys(reference)
    change = [np.asarray(model[k], dtype=np.float64) - np.asarray(reference[k], dtype=np.float64) for k in keys]
    clipped, norm = clip_change(change, max_norm)
    out = dict(model)
    for key, delta in zip(keys, clipped):
        out[key] = (np.asarray(reference[key], dtype=np.float64) + delta).astype(np.asarray(model[key]).dtype)
    return out, norm


def noise_std(noise_multiplier: float, clipping_norm: float, weights: Sequence[float]) -> float:
    """The Gaussian noise's standard deviation for a weighted mean of changes clipped to `clipping_norm`."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or not np.all(w > 0):
        raise ValueError(f"noise_std: weights must be > 0, got {list(weights)}")
    return float(noise_multiplier * clipping_norm * w.max() / w.sum())


# A BatchNorm variance below zero makes every feature NaN; noise of std 0.6 (z = 0.1 on the demo) drew
# such values in the first round. Flooring them after the noise is post-processing: no privacy spent.
VARIANCE_FLOOR = 1e-3


def add_noise(arrays: Arrays, std: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The float arrays plus N(0, std^2) noise each (dtypes kept), BatchNorm variances floored at
    VARIANCE_FLOOR; integer buffers as they are."""
    out = dict(arrays)
    for key in float_keys(arrays):
        a = np.asarray(arrays[key])
        noised = a.astype(np.float64) + rng.normal(0.0, std, a.shape)
        if key.endswith(VARIANCE_SUFFIX):
            noised = np.maximum(noised, VARIANCE_FLOOR)
        out[key] = noised.astype(a.dtype)
    return out
