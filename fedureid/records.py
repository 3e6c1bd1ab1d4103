"""Translate between Flower records and the plain numpy dicts `reid_core` uses."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

CLIENT_NAME_KEY = "client-name"


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Numpy dict -> ArrayRecord (order kept)."""
    # np.ascontiguousarray would turn 0-d buffers (num_batches_tracked) into shape (1,)
    return ArrayRecord({k: Array(np.asarray(v, order="C")) for k, v in arrays.items()})


def from_record(record: ArrayRecord) -> dict[str, np.ndarray]:
    """ArrayRecord -> numpy dict (order kept)."""
    return {k: record[k].numpy() for k in record.keys()}


def metric_record(values: Mapping[str, float | int]) -> MetricRecord:
    """Scalar metrics only; non-finite floats become -1 so replies stay valid."""
    out: dict[str, float | int] = {}
    for k, v in values.items():
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, float) and not math.isfinite(v):
            v = -1.0
        out[k] = v
    return MetricRecord(out)


def info_record(client_name: str) -> ConfigRecord:
    """Who sent the reply: a stable name, not Flower's node_id (it changes on restart)."""
    return ConfigRecord({CLIENT_NAME_KEY: client_name})
