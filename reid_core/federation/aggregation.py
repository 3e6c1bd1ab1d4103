"""Maths on model arrays (pure numpy): FedAvg weighted by #images, and FedUReID's Personalized Update.

Personalized Update (PU, the paper's third part): client k trains from
theta_k = mu * theta_k(its previous local model) + (1 - mu) * theta_global,
mixed at the cloud (one model per edge) or at the edge (one broadcast). With `local_bn` the
BatchNorm layers are the edge's own (FedBN, Li et al. ICLR 2021): each edge's normalisation
follows its own cameras, while the convolutions are shared.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from reid_core.config.choices import mu_problem
from reid_core.config.schema import PersonalizedUpdate

Arrays = Mapping[str, np.ndarray]


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.floating)


def weighted_average(models: Sequence[Arrays], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """FedAvg: average float arrays weighted by `weights` (e.g. #training images).

    Integer buffers (BatchNorm's num_batches_tracked) are not averaged: the
    maximum is kept, as they count steps rather than describe the model.
    """
    if not models:
        raise ValueError("weighted_average: no models to average")
    if len(models) != len(weights):
        raise ValueError(f"weighted_average: {len(models)} models but {len(weights)} weights")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weighted_average: weights must be finite, >= 0 and not all 0: {weights}")
    w = w / w.sum()
    keys = list(models[0].keys())
    for m in models[1:]:
        if list(m.keys()) != keys:
            raise ValueError("weighted_average: models have different array names")
    out: dict[str, np.ndarray] = {}
    for key in keys:
        first = models[0][key]
        if _is_float(first):
            acc = np.zeros(first.shape, dtype=np.float64)
            for wi, m in zip(w, models):
                acc += wi * m[key]
            out[key] = acc.astype(first.dtype)
        else:
            out[key] = np.max(np.stack([m[key] for m in models]), axis=0)
    return out


def batchnorm_keys(arrays: Arrays) -> frozenset[str]:
    """The arrays of every BatchNorm layer (those beside a `running_mean`): affine, statistics, counter."""
    prefixes = [k[: -len("running_mean")] for k in arrays if k.endswith(".running_mean")]
    parts = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return frozenset(p + part for p in prefixes for part in parts if p + part in arrays)


def interpolate(local: Arrays | None, global_: Arrays, mu: float, local_bn: bool = False) -> dict[str, np.ndarray]:
    """Personalized Update: theta_k = mu * theta_k(local) + (1 - mu) * theta_global.

    A client with no previous local model gets the global one. Integer buffers
    are taken from the global model (they are counters, not weights). `local_bn`: the
    BatchNorm layers are taken whole from the local model (when there is one).
    """
    problem = mu_problem(mu)
    if problem:
        raise ValueError(f"interpolate: {problem}")
    own = batchnorm_keys(global_) if local_bn and local is not None else frozenset()
    if local is None or (mu == 0.0 and not own):
        return {k: np.array(v, copy=True) for k, v in global_.items()}
    if set(local) != set(global_):
        missing = sorted(set(global_) ^ set(local))[:5]
        raise ValueError(f"interpolate: local and global models differ in arrays {missing}")
    out: dict[str, np.ndarray] = {}
    for key, g in global_.items():
        loc = local[key]
        if loc.shape != g.shape:
            raise ValueError(f"interpolate: shape of '{key}' differs: {loc.shape} vs {g.shape}")
        if key in own:
            out[key] = np.array(loc, copy=True)
        elif _is_float(g):
            mixed = mu * loc.astype(np.float64) + (1.0 - mu) * g.astype(np.float64)
            out[key] = mixed.astype(g.dtype)
        else:
            out[key] = np.array(g, copy=True)
    return out


def check_update(update: Arrays, reference: Arrays) -> str | None:
    """Return why a client update is unusable (names/shapes/dtypes/non-finite), or None."""
    missing = sorted(set(reference) - set(update))
    extra = sorted(set(update) - set(reference))
    if missing or extra:
        return f"array names differ (missing {missing[:3]}, extra {extra[:3]})"
    for key, ref in reference.items():
        arr = update[key]
        if arr.shape != ref.shape:
            return f"shape of '{key}' is {arr.shape}, expected {ref.shape}"
        if _is_float(ref) and not np.all(np.isfinite(arr)):
            return f"'{key}' holds NaN or Inf"
    for key, ref in reference.items():  # e.g. complex or int weights break FedAvg
        if update[key].dtype != ref.dtype:
            return f"dtype of '{key}' is {update[key].dtype}, expected {ref.dtype}"
    return None


def personalize(pu: PersonalizedUpdate, local: Arrays | None, global_: Arrays) -> dict[str, np.ndarray]:
    """theta_k under `pu` from an edge's last local model (None: it has none yet) and the global model."""
    return interpolate(local, global_, pu.mu, pu.local_bn)


def edge_start(pu: PersonalizedUpdate, received: Arrays, local: Arrays | None, training: bool) -> dict[str, np.ndarray]:
    """The model an edge trains (`training`) or evaluates from: as received (mixed at the cloud, or the
    global model under `pu.train_from=global` when training) or mixed here with its own."""
    return personalize(pu, local, received) if pu.at_edge and pu.mixes(training) else dict(received)
