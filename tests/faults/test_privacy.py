"""What leaves an edge: every message each ClientApp sent over a whole run, as it crossed
Flower's wire format, holds the model arrays, scalar metrics and its client name - nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from federations import model_reference, private_strings

pytestmark = [pytest.mark.privacy, pytest.mark.slow]

# Records each reply kind may carry, by name and type.
ALLOWED = {"query": {"info": "ConfigRecord"},
           "train": {"arrays": "ArrayRecord", "metrics": "MetricRecord", "info": "ConfigRecord"},
           "evaluate": {"metrics": "MetricRecord", "info": "ConfigRecord"}}
MAX_METRICS = 32  # a record of scalars; a pseudo-label or feature list would need far more entries
OVERHEAD_BYTES = 16_384  # message, record and metric headers on top of the raw array bytes


def record_kinds(content) -> dict[str, str]:
    return {name: type(record).__name__ for name, record in content.items()}


RUNS = pytest.mark.parametrize("run_name", ["faulty_run", "faulty_run_cc"], ids=["buc", "cc"])


@RUNS
def test_edges_send_only_model_arrays_scalar_metrics_and_their_name(run_name, request):
    faulty_run = request.getfixturevalue(run_name)
    reference = model_reference(faulty_run.rc)
    model_bytes = sum(a.nbytes for a in reference.values())
    secrets = private_strings(faulty_run.data_root, faulty_run.state_root)
    replies = [x for x in faulty_run.grid.exchanges if x.reply is not None]
    kinds = sorted({(x.edge, x.message_type) for x in replies if x.reply.has_content()})
    # not vacuous: the two working edges answered every kind of message
    assert {("edge_a", k) for k in ALLOWED} | {("edge_b", k) for k in ALLOWED} <= set(kinds)
    for x in replies:
        where = f"{x.edge} {x.message_type} round {x.server_round}"
        meta = x.reply.metadata
        assert (meta.message_type, meta.src_node_id, meta.group_id) == (
            x.message_type, x.node_id, x.request.metadata.group_id), where
        if x.reply.has_error():  # the error text leaves the edge too: no paths, no file names
            reason = x.reply.error.reason
            assert not [s for s in secrets if s in reason], (where, reason)
            continue
        content = x.reply.content
        assert record_kinds(content) == ALLOWED[x.message_type], where
        assert dict(content["info"]) == {"client-name": x.edge}, where
        if x.message_type == "train":
            arrays = {k: v.numpy() for k, v in content["arrays"].items()}
            assert list(arrays) == list(reference), where  # exactly the model's arrays, in order
            for k, ref in reference.items():
                assert (arrays[k].shape, arrays[k].dtype) == (ref.shape, ref.dtype), (where, k)
        if "metrics" in content:
            metrics = dict(content["metrics"])
            assert "num-examples" in metrics and len(metrics) <= MAX_METRICS, where
            for k, v in metrics.items():
                assert isinstance(v, (int, float)) and not isinstance(v, bool), (where, k, v)
                assert not [s for s in secrets if s in k], (where, k)
        limit = OVERHEAD_BYTES + (model_bytes if x.message_type == "train" else 0)
        assert x.reply_bytes <= limit, (where, x.reply_bytes, limit)


@RUNS
def test_pseudo_labels_and_memory_stay_on_the_edge(run_name, request):
    """They exist in the edge's state folder, and no byte run of them is in any reply."""
    faulty_run = request.getfixturevalue(run_name)
    with np.load(faulty_run.state_root / "edge_a" / "learner_state.npz") as state:
        labels, memory = state["labels"], state["memory"]
    assert labels.shape == (69,) and memory.ndim == 2 and memory.shape[0] == labels.max() + 1 > 0
    payload = b"".join(arr.numpy().tobytes() for x in faulty_run.exchanges("edge_a")
                       if x.reply.has_content() and "arrays" in x.reply.content
                       for arr in x.reply.content["arrays"].values())
    assert len(payload) > 100_000  # the model went out
    assert labels.tobytes() not in payload
    assert not [i for i, row in enumerate(memory) if row.tobytes() in payload]
