"""Bad updates are rejected and logged, never aggregated, and never crash the ServerApp.

One real ServerApp run (3 rounds, mu=0 so each evaluate message carries the global model)
with two edges that tamper with their train replies; plus fabricated replies for the cases
tests/apps/test_strategy.py does not cover (dtype, array order).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from federations import CLIENTS, arrays_of, make_grid, metrics_of, model_reference, run_config, run_federation
from reid_core.federation.aggregation import weighted_average
from fedureid.records import info_record, to_record

pytestmark = pytest.mark.faults

Change = Callable[[dict, dict], tuple[dict, dict]]  # (arrays, metrics) -> (arrays, metrics)


def first_float(arrays: dict) -> str:
    return next(k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating) and v.size > 1)


def with_nan(a, m):
    k = first_float(a)
    return {**a, k: np.where(np.arange(a[k].size).reshape(a[k].shape) == 0, np.nan, a[k]).astype(a[k].dtype)}, m


def wrong_shape(a, m):
    k = first_float(a)
    return {**a, k: a[k].reshape(-1)[:-1].copy()}, m


def extra_array(a, m):
    return {**a, "features": np.zeros((69, 128), np.float32)}, m


def missing_array(a, m):
    return dict(list(a.items())[:-1]), m


def reordered(a, m):  # valid: the same arrays, listed in reverse order
    return dict(reversed(list(a.items()))), m


def negative_count(a, m):
    return a, {**m, "num-examples": -5}


def replace_train_reply(plan: dict[int, Change]):
    """A tamper that rewrites this edge's train reply in the rounds of `plan`."""
    def tamper(request: Message, reply: Message) -> Message:
        if request.metadata.message_type != MessageType.TRAIN:
            return reply
        rnd = int(request.content["config"]["server-round"])
        if rnd not in plan:
            return reply
        arrays, metrics = plan[rnd](arrays_of(reply), metrics_of(reply))
        content = RecordDict({"arrays": to_record(arrays), "metrics": MetricRecord(metrics),
                              "info": reply.content["info"]})
        return Message(content, reply_to=request)
    return tamper


PLAN = {"edge_b": {1: with_nan, 2: reordered, 3: missing_array},
        "edge_c": {1: wrong_shape, 2: extra_array, 3: negative_count}}
REJECTED = {1: {"edge_b": "NaN or Inf", "edge_c": "shape of"},
            2: {"edge_c": "array names differ"},
            3: {"edge_b": "array names differ", "edge_c": "bad num-examples -5"}}


@pytest.fixture(scope="module")
def tampered_run(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("bad_updates")
    # FedAvg weighted by the counts alone (algorithm=fedureid caps an edge at 40% of the weight)
    rc = run_config(base / "run", CLIENTS, smoke_root, "pu.mu=0.0", "federation.max_share=1", rounds=3, min_clients=2)
    grid = make_grid(smoke_root, base / "edge_state", rc)
    for name, plan in PLAN.items():
        grid.edge(name).tamper = replace_train_reply(plan)
    return run_federation(grid, rc, base / "run", smoke_root, base / "edge_state")


@pytest.mark.slow
def test_serverapp_survives_bad_updates_and_logs_each(tampered_run):
    assert tampered_run.error is None
    metrics = tampered_run.metrics
    assert [r["round"] for r in metrics["rounds"]] == [1, 2, 3]
    server_log = tampered_run.logs.text(edge_side=False)
    for rnd in metrics["rounds"]:
        got = {r["client"]: r["reason"] for r in rnd["rejected"] if r["phase"] == "train"}
        want = REJECTED[rnd["round"]]
        assert sorted(got) == sorted(want), rnd["rejected"]
        for name, words in want.items():
            assert words in got[name], (name, got[name])
            assert f"round {rnd['round']}: rejected update from '{name}'" in server_log
    assert tampered_run.checkpoint_meta()["round"] == 3
    assert sorted(metrics["final"]) == sorted(CLIENTS)  # bad uploaders still evaluate


@pytest.mark.slow
def test_global_model_is_the_average_of_accepted_updates_only(tampered_run):
    reference = model_reference(tampered_run.rc)
    for rnd in (1, 2, 3):
        accepted = sorted(set(CLIENTS) - set(REJECTED[rnd]))
        uploads = {x.edge: x.reply for x in tampered_run.exchanges(message_type="train", server_round=rnd)}
        models = [{k: arrays_of(uploads[n])[k] for k in reference} for n in accepted]
        expected = weighted_average(models, [metrics_of(uploads[n])["num-examples"] for n in accepted])
        # mu=0: every evaluate message of the round carries the new global model
        for x in tampered_run.exchanges(message_type="evaluate", server_round=rnd):
            got = arrays_of(x.request)
            assert list(got) == list(reference)
            for k, v in expected.items():
                np.testing.assert_array_equal(got[k], v, err_msg=f"round {rnd} {x.edge} {k}")
                assert not np.issubdtype(v.dtype, np.floating) or np.isfinite(got[k]).all()


# ---- fabricated replies (fast) --------------------------------------------------------------

def _strategy(tmp_path):
    from reid_core.federation.core import FederationCore
    from reid_core.federation.state import ServerState
    from server_app.strategy import FedUReIDStrategy

    glob = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32), "n": np.array(0, np.int64)}
    core = FederationCore(ServerState(global_arrays=glob), min_clients=1, checkpoint_dir=str(tmp_path))
    return FedUReIDStrategy(core, total_rounds=3), glob


class _Grid:
    def __init__(self, names):
        self.names = names

    def get_node_ids(self):
        return list(self.names)

    def send_and_receive(self, messages, timeout=None):
        return [Message(RecordDict({"info": info_record(self.names[m.metadata.dst_node_id])}), reply_to=m)
                for m in messages]


def _round(tmp_path, uploads: dict[str, dict]):
    st, glob = _strategy(tmp_path)
    grid = _Grid({10 + i: n for i, n in enumerate(uploads)})
    requests = st.configure_train(1, to_record(glob), ConfigRecord(), grid)
    replies = []
    for req in requests:
        name = grid.names[req.metadata.dst_node_id]
        content = RecordDict({"arrays": to_record(uploads[name]), "metrics": MetricRecord({"num-examples": 10}),
                              "info": info_record(name)})
        replies.append(Message(content, reply_to=req))
    agg, _ = st.aggregate_train(1, replies)
    return st, agg


def _honest(value: float) -> dict:
    return {"w": np.full((2, 3), value, np.float32), "b": np.full(3, value, np.float32), "n": np.array(4, np.int64)}


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.complex64, np.int32])
def test_update_with_another_dtype_is_rejected(tmp_path, dtype):
    bad = {k: (v.astype(dtype) if k == "w" else v) for k, v in _honest(9.0).items()}
    st, agg = _round(tmp_path, {"a": _honest(1.0), "b": bad})
    assert [r["client"] for r in st.state.history[0]["rejected"]] == ["b"]
    assert "dtype" in st.state.history[0]["rejected"][0]["reason"]
    assert agg["w"].numpy().dtype == np.float32
    np.testing.assert_array_equal(agg["w"].numpy(), 1.0)


def test_update_listing_arrays_in_another_order_is_aggregated_by_name(tmp_path):
    flipped = dict(reversed(list(_honest(3.0).items())))
    st, agg = _round(tmp_path, {"a": _honest(1.0), "b": flipped})
    assert st.state.history[0]["rejected"] == []
    assert list(agg.keys()) == ["w", "b", "n"]
    np.testing.assert_allclose(agg["w"].numpy(), 2.0)
    assert list(st.state.client_arrays["b"]) == ["w", "b", "n"]
