"""The messages between cloud and edges: their keys (one place, both apps) and numpy <-> Flower records."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord

from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.core import scalar_metrics

# RecordDict entries of a message
ARRAYS = "arrays"    # ArrayRecord: the model (down: global or personalised; up: the edge's trained model)
CONFIG = "config"    # ConfigRecord: the round's settings, cloud -> edge
METRICS = "metrics"  # MetricRecord: an edge's scalar results, edge -> cloud
INFO = "info"        # ConfigRecord: who replies (CLIENT_NAME)
# ConfigRecord keys, cloud -> edge
SERVER_ROUND = "server-round"  # the round number, counted over resumed runs
TOTAL_ROUNDS = "total-rounds"  # the run's rounds (0: the edge's config decides)
MU = "mu"                      # Personalized Update's mu
PU_WHERE = "pu-where"          # cloud | edge: where the personalised model is mixed
LOCAL_BN = "local-bn"          # PU keeps the edge's own BatchNorm layers
PU_TRAIN_FROM = "pu-train-from"  # personalized | global: what the edge trains from
QUERY = "query"                # a QUERY message asks for this key's value
ARRAY_NAMES = "array-names"    # secure aggregation: the model's array names (Flower's fit layout has none)
NAME_SEPARATOR = "\n"          # between ARRAY_NAMES' names
CLIP_NORM = "clip-norm"        # secure aggregation: the edge clips its change to this L2 norm (0: off)
# MetricRecord / ConfigRecord keys, edge -> cloud
NUM_EXAMPLES = "num-examples"  # training images (train) or queries (evaluate): FedAvg's weight
CLIENT_NAME = "client-name"    # the edge's stable name (Flower's node_id changes on restart)
CHANGE_NORM = "change-norm"    # secure aggregation: the L2 norm of the edge's change before clipping


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Numpy dict -> ArrayRecord (order kept)."""
    # np.ascontiguousarray would turn 0-d buffers (num_batches_tracked) into shape (1,)
    return ArrayRecord({k: Array(np.asarray(v, order="C")) for k, v in arrays.items()})


def from_record(record: ArrayRecord) -> dict[str, np.ndarray]:
    """ArrayRecord -> numpy dict (order kept)."""
    return {k: record[k].numpy() for k in record.keys()}


def pu_config(pu: PersonalizedUpdate) -> dict[str, float | str | bool]:
    """Personalized Update's settings as ConfigRecord entries, cloud -> edge."""
    return {MU: pu.mu, PU_WHERE: pu.where, LOCAL_BN: pu.local_bn, PU_TRAIN_FROM: pu.train_from}


def pu_from_config(config: Mapping) -> PersonalizedUpdate:
    """The edge's side of :func:`pu_config` (absent keys: no personalisation, mixed at the cloud)."""
    return PersonalizedUpdate(float(config.get(MU, 0.0)), str(config.get(PU_WHERE, "cloud")),
                              bool(config.get(LOCAL_BN, False)), str(config.get(PU_TRAIN_FROM, "personalized")))


def metric_record(values: Mapping[str, float | int]) -> MetricRecord:
    """Scalar metrics only; non-finite floats become -1 so replies stay valid."""
    return MetricRecord(scalar_metrics(values))


def info_record(client_name: str) -> ConfigRecord:
    """Who sent the reply: a stable name, not Flower's node_id (it changes on restart)."""
    return ConfigRecord({CLIENT_NAME: client_name})
