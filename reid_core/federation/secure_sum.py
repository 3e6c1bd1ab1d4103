"""What secure aggregation sums, and how the cloud applies the sum (pure numpy).

Under secure aggregation (Flower's SecAgg+) the cloud learns only the weighted mean of the
edges' inputs, never one edge's. Each edge's input is its model's change from the model it
received, over the float arrays only: integer buffers (BatchNorm's num_batches_tracked) count
steps, they are not averaged in FedAvg either, and a change near zero uses the quantiser's range
far better than whole weights. With PU at the edge every edge receives the same global model,
so global + weighted mean change is exactly FedAvg of the trained models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray]


def float_keys(arrays: Arrays) -> list[str]:
    """The names of the float arrays, in the model's order: what is summed."""
    return [k for k, v in arrays.items() if np.issubdtype(np.asarray(v).dtype, np.floating)]


def model_change(trained: Arrays, sent: Arrays) -> list[np.ndarray]:
    """trained - sent for each float array of `sent`, in its order (float64); refuses what cannot be summed."""
    change = []
    for key in float_keys(sent):
        if key not in trained:
            raise ValueError(f"the trained model lacks '{key}'")
        if np.shape(trained[key]) != np.shape(sent[key]):
            raise ValueError(f"shape of '{key}' is {np.shape(trained[key])}, expected {np.shape(sent[key])}")
        delta = np.asarray(trained[key], dtype=np.float64) - np.asarray(sent[key], dtype=np.float64)
        if not np.all(np.isfinite(delta)):
            raise ValueError(f"'{key}' holds NaN or Inf")
        change.append(delta)
    return change


def clip_change(change: Sequence[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    """The change scaled down to L2 norm `max_norm` over all arrays (0: unchanged), and its norm before."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(c))) for c in change)))
    if max_norm <= 0 or norm <= max_norm:
        return list(change), norm
    return [c * (max_norm / norm) for c in change], norm


def apply_change(global_arrays: Arrays, mean_change: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """global + mean change on the float arrays (dtypes kept); integer buffers as they were."""
    keys = float_keys(global_arrays)
    if len(mean_change) != len(keys):
        raise ValueError(f"the sum holds {len(mean_change)} arrays, the model {len(keys)} float arrays")
    out = {k: np.array(v, copy=True) for k, v in global_arrays.items()}
    for key, delta in zip(keys, mean_change):
        delta = np.asarray(delta, dtype=np.float64)
        if delta.shape != out[key].shape:
            raise ValueError(f"the sum's '{key}' has shape {delta.shape}, expected {out[key].shape}")
        if not np.all(np.isfinite(delta)):
            raise ValueError(f"the sum's '{key}' holds NaN or Inf")
        out[key] = (out[key].astype(np.float64) + delta).astype(out[key].dtype)
    return out
