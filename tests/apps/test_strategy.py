"""FedUReIDStrategy with fabricated replies: weighting, PU maths, identity by name,
bad updates, checkpoint/resume, cloud vs edge interpolation."""

from unittest.mock import Mock

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from flwr.supercore.task_identity import TaskIdentity

from reid_core.federation.core import FederationCore
from reid_core.federation.state import ServerState
from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.aggregation import interpolate
from fedureid.records import from_record, info_record, to_record
from server_app.strategy import FedUReIDStrategy


@pytest.fixture(autouse=True)
def _run_identity():
    """Messages are created inside a run in Flower; give the test process one."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    yield


def arrays(w: float) -> dict:
    return {"w": np.full((3,), w, np.float32), "n": np.array(1, np.int64)}


class FakeGrid:
    """Nodes with stable client names; answers QUERY messages like the ClientApp."""

    def __init__(self, names: dict):
        self.names = names  # node_id -> client name
        self.queries = 0

    def get_node_ids(self):
        return list(self.names)

    def send_and_receive(self, messages, timeout=None):
        replies = []
        for m in messages:
            assert m.metadata.message_type == MessageType.QUERY
            self.queries += 1
            replies.append(reply(m.metadata.dst_node_id, None, {"num-examples": 1}, self.names[m.metadata.dst_node_id]))
        return replies


def reply(node_id, arr, metrics, name=None, error=False):
    msg = Mock(spec=Message)
    msg.metadata.src_node_id = node_id
    msg.has_error.return_value = error
    content = {"metrics": MetricRecord(metrics)}
    if arr is not None:
        content["arrays"] = to_record(arr)
    if name:
        content["info"] = info_record(name)
    msg.content = RecordDict(content)
    return msg


def strategy(tmp_path=None, mu=0.5, where="cloud", state=None, local_bn=False, train_from="personalized"):
    state = state or ServerState(global_arrays=arrays(0.0))
    core = FederationCore(state, pu=PersonalizedUpdate(mu, where, local_bn, train_from), min_clients=1,
                          checkpoint_dir=str(tmp_path) if tmp_path else None)
    return FedUReIDStrategy(core, total_rounds=5)


def train_round(st, grid, uploads, rnd=1):
    msgs = st.configure_train(rnd, to_record(st.state.global_arrays), ConfigRecord(), grid)
    name_to_node = {v: k for k, v in grid.names.items()}
    reps = [reply(name_to_node[n], a, {"num-examples": k}, n) for n, (a, k) in uploads.items()]
    agg, _ = st.aggregate_train(rnd, reps)
    st.aggregate_evaluate(rnd, [])
    return msgs, agg


def test_fedavg_weighted_by_examples():
    st, grid = strategy(mu=0.0), FakeGrid({11: "a", 22: "b"})
    _, agg = train_round(st, grid, {"a": (arrays(1.0), 100), "b": (arrays(4.0), 200)})
    np.testing.assert_allclose(from_record(agg)["w"], 3.0)


@pytest.mark.parametrize("mu", [0.0, 0.3, 0.9])
def test_personalized_update_per_node(mu):
    st, grid = strategy(mu=mu), FakeGrid({11: "a", 22: "b"})
    first, _ = train_round(st, grid, {"a": (arrays(1.0), 100), "b": (arrays(4.0), 200)})
    # round 1: nobody has a local model yet -> everyone gets the global one
    for m in first:
        np.testing.assert_allclose(from_record(m.content["arrays"])["w"], 0.0)
    msgs = st.configure_train(2, to_record(st.state.global_arrays), ConfigRecord(), grid)
    got = {m.metadata.dst_node_id: from_record(m.content["arrays"])["w"][0] for m in msgs}
    assert got[11] == pytest.approx(mu * 1.0 + (1 - mu) * 3.0)
    assert got[22] == pytest.approx(mu * 4.0 + (1 - mu) * 3.0)
    assert all(m.content["config"]["server-round"] == 2 for m in msgs)


def test_state_keyed_by_name_across_node_ids():
    st, grid = strategy(mu=1.0), FakeGrid({11: "a", 22: "b"})
    train_round(st, grid, {"a": (arrays(1.0), 100), "b": (arrays(4.0), 100)})
    grid.names = {33: "a", 22: "b"}  # 'a' restarted and got a new node_id
    msgs = st.configure_train(2, to_record(st.state.global_arrays), ConfigRecord(), grid)
    got = {m.metadata.dst_node_id: from_record(m.content["arrays"])["w"][0] for m in msgs}
    assert got[33] == pytest.approx(1.0)  # mu=1: exactly its own last local model
    assert grid.queries == 3  # asked 11, 22, then only the new 33


@pytest.mark.parametrize(
    "bad",
    [
        {"w": np.full((3,), np.nan, np.float32), "n": np.array(1, np.int64)},
        {"w": np.full((3,), np.inf, np.float32), "n": np.array(1, np.int64)},
        {"w": np.zeros((4,), np.float32), "n": np.array(1, np.int64)},
        {"w": np.zeros((3,), np.float32)},
        {**arrays(1.0), "extra": np.zeros(2, np.float32)},
    ],
)
def test_bad_update_rejected_not_aggregated(bad):
    st, grid = strategy(mu=0.0), FakeGrid({11: "a", 22: "b"})
    _, agg = train_round(st, grid, {"a": (arrays(2.0), 100), "b": (bad, 100)})
    np.testing.assert_allclose(from_record(agg)["w"], 2.0)
    assert st.state.history[0]["rejected"][0]["client"] == "b"
    assert "b" not in st.state.client_arrays


@pytest.mark.parametrize("count", [-5, 0, float("nan"), 1e12])
def test_absurd_example_count_rejected(count):
    st, grid = strategy(mu=0.0), FakeGrid({11: "a", 22: "b"})
    _, agg = train_round(st, grid, {"a": (arrays(2.0), 100), "b": (arrays(9.0), count)})
    np.testing.assert_allclose(from_record(agg)["w"], 2.0)


def test_error_and_malformed_replies_do_not_crash():
    st, grid = strategy(mu=0.0), FakeGrid({11: "a", 22: "b"})
    st.configure_train(1, to_record(st.state.global_arrays), ConfigRecord(), grid)
    err = reply(22, None, {"num-examples": 1}, error=True)
    err.error.reason = "boom"
    two_metrics = reply(22, arrays(1.0), {"num-examples": 5}, "b")
    two_metrics.content["metrics2"] = MetricRecord({"x": 1})
    agg, _ = st.aggregate_train(1, [reply(11, arrays(2.0), {"num-examples": 10}, "a"), err, two_metrics])
    np.testing.assert_allclose(from_record(agg)["w"], 2.0)
    assert st.aggregate_train(1, [err])[0] is None  # nothing valid: global kept


def test_checkpoint_resume(tmp_path):
    st, grid = strategy(tmp_path, mu=0.5), FakeGrid({11: "a", 22: "b"})
    train_round(st, grid, {"a": (arrays(1.0), 100), "b": (arrays(4.0), 200)})
    loaded = ServerState.load(tmp_path)
    assert loaded.round == 1
    np.testing.assert_allclose(loaded.global_arrays["w"], 3.0)
    np.testing.assert_allclose(loaded.client_arrays["b"]["w"], 4.0)
    assert loaded.client_examples == {"a": 100, "b": 200}
    resumed = strategy(mu=0.5, state=loaded)
    msgs = resumed.configure_train(1, to_record(loaded.global_arrays), ConfigRecord(), FakeGrid({44: "a", 55: "b"}))
    assert msgs[0].content["config"]["server-round"] == 2  # continues at r+1
    got = {m.metadata.dst_node_id: from_record(m.content["arrays"])["w"][0] for m in msgs}
    assert got == {44: pytest.approx(2.0), 55: pytest.approx(3.5)}


def test_cloud_and_edge_interpolation_give_same_weights():
    cloud, edge = strategy(mu=0.7), strategy(mu=0.7, where="edge")
    grid = FakeGrid({11: "a", 22: "b"})
    up = {"a": (arrays(1.0), 100), "b": (arrays(4.0), 300)}
    for st in (cloud, edge):
        train_round(st, grid, up)
    glob = to_record(cloud.state.global_arrays)
    cloud_msgs = cloud.configure_train(2, glob, ConfigRecord(), grid)
    edge_msgs = edge.configure_train(2, glob, ConfigRecord(), grid)
    for cm, em in zip(cloud_msgs, edge_msgs):
        name = grid.names[cm.metadata.dst_node_id]
        cfg = em.content["config"]
        assert cfg["pu-where"] == "edge"
        at_edge = interpolate(up[name][0], from_record(em.content["arrays"]), cfg["mu"])  # what the ClientApp does
        for k, v in from_record(cm.content["arrays"]).items():
            np.testing.assert_array_equal(v, at_edge[k])
    # edge mode sends one identical payload to every node
    payloads = {em.content["arrays"].object_id for em in edge_msgs}
    assert len(payloads) == 1


@pytest.mark.parametrize("where", ["cloud", "edge"])
def test_train_from_global_sends_the_global_model_to_train_and_theta_k_to_evaluate(where):
    from client_app.app import _received

    st, grid = strategy(mu=0.5, where=where, train_from="global"), FakeGrid({11: "a", 22: "b"})
    up = {"a": (arrays(1.0), 100), "b": (arrays(4.0), 300)}
    train_round(st, grid, up)  # global 3.25
    glob = to_record(st.state.global_arrays)
    for phase, msgs in (("train", st.configure_train(2, glob, ConfigRecord(), grid)),
                        ("evaluate", st.configure_evaluate(2, glob, ConfigRecord(), grid))):
        for m in msgs:
            name = grid.names[m.metadata.dst_node_id]
            assert m.content["config"]["pu-train-from"] == "global"
            start = _received(m, training=phase == "train")[1](up[name][0])  # what the ClientApp starts from
            expected = 3.25 if phase == "train" else 0.5 * up[name][0]["w"][0] + 0.5 * 3.25
            np.testing.assert_allclose(start["w"], expected)


def bn_arrays(w: float) -> dict:
    return {"w": np.full((3,), w, np.float32), "bn.running_mean": np.full((2,), w, np.float32),
            "bn.running_var": np.full((2,), w, np.float32)}


def test_local_bn_each_edge_starts_from_its_own_batchnorm_at_the_cloud_or_the_edge():
    grid = FakeGrid({11: "a", 22: "b"})
    up = {"a": (bn_arrays(1.0), 100), "b": (bn_arrays(4.0), 300)}
    started = {}
    for where in ("cloud", "edge"):
        st = strategy(mu=0.5, where=where, local_bn=True, state=ServerState(global_arrays=bn_arrays(0.0)))
        train_round(st, grid, up)
        for m in st.configure_train(2, to_record(st.state.global_arrays), ConfigRecord(), grid):
            name, cfg = grid.names[m.metadata.dst_node_id], m.content["config"]
            sent = from_record(m.content["arrays"])
            started[where, name] = (sent if where == "cloud" else
                                    interpolate(up[name][0], sent, cfg["mu"], cfg["local-bn"]))  # the ClientApp's mix
    for name, (local, _) in up.items():
        for key in ("w", "bn.running_mean", "bn.running_var"):
            np.testing.assert_array_equal(started["cloud", name][key], started["edge", name][key])
        np.testing.assert_array_equal(started["cloud", name]["bn.running_mean"], local["bn.running_mean"])
        np.testing.assert_allclose(started["cloud", name]["w"], 0.5 * local["w"] + 0.5 * 3.25)  # global 3.25


@pytest.mark.parametrize("mu, where, train_from, distinct_round2", [(0.5, "cloud", "personalized", 2),
                                                                    (0.5, "edge", "personalized", 1),
                                                                    (0.0, "cloud", "personalized", 1),
                                                                    (0.5, "cloud", "global", 1)])
def test_traffic_counts_bytes_per_edge_and_distinct_models(mu, where, train_from, distinct_round2):
    st, grid = strategy(mu=mu, where=where, train_from=train_from), FakeGrid({11: "a", 22: "b"})
    size = to_record(arrays(0.0)).count_bytes()
    train_round(st, grid, {"a": (arrays(1.0), 100), "b": (arrays(4.0), 200)})
    first = st.state.history[0]["traffic"]
    # round 1: nobody has a local model, so both edges get the same (global) model
    assert first == {"train_down_bytes": 2 * size, "train_down_distinct": 1,
                     "train_down_distinct_bytes": size, "train_up_bytes": 2 * size}
    msgs = st.configure_train(2, to_record(st.state.global_arrays), ConfigRecord(), grid)
    st.configure_evaluate(2, to_record(st.state.global_arrays), ConfigRecord(), grid)
    second = st.state.round_record(2)["traffic"]
    assert len(msgs) == 2 and second["train_down_bytes"] == 2 * size
    assert second["train_down_distinct"] == distinct_round2
    assert second["train_down_distinct_bytes"] == distinct_round2 * size
    assert second["evaluate_down_bytes"] == 2 * size


def test_round_line_shows_training_only_when_the_client_trained():
    from reid_core.federation.core import round_line

    assert round_line(0, "mall", {"rank1": 10.0, "mAP": 16.34}) == "round  0  mall        | rank-1  10.0  mAP  16.3"
    line = round_line(3, "mall", {"rank1": 35.0, "mAP": 42.1, "epochs": 3, "train-loss": 4.1678,
                                  "precision": 0.123, "clusters": 194})
    assert line == "round  3  mall       epochs  3  loss  4.168  prec 0.12  clusters  194  | rank-1  35.0  mAP  42.1"


def test_fewer_usable_updates_than_min_clients_are_averaged_with_a_warning_none_keep_the_model():
    from reid_core.federation.core import FederationCore

    said = []
    state = ServerState(global_arrays=arrays(0.0))
    core = FederationCore(state, min_clients=2, say=lambda level, msg: said.append(msg))
    new, _ = core.aggregate(1, {"a": (arrays(5.0), {"num-examples": 10})})
    np.testing.assert_allclose(new["w"], 5.0)  # as Flower's FedAvg: what arrived is averaged
    assert any("1 usable update(s) < min_clients=2; averaging them" in m for m in said)
    new, summary = core.aggregate(2, {})
    assert new is None and summary == {} and any("global model kept" in m for m in said)
    np.testing.assert_allclose(state.global_arrays["w"], 5.0)


def test_an_edge_that_inflates_its_count_weighs_at_most_growth_times_its_first():
    from reid_core.federation.core import FederationCore
    from reid_core.federation.screening import Screening

    state = ServerState(global_arrays=arrays(0.0))
    core = FederationCore(state, min_clients=1, screening=Screening(count_growth=2.0))
    core.aggregate(1, {"a": (arrays(1.0), {"num-examples": 100}), "b": (arrays(4.0), {"num-examples": 100})})
    new, _ = core.aggregate(2, {"a": (arrays(1.0), {"num-examples": 100}),
                                "b": (arrays(4.0), {"num-examples": 10_000_000})})
    np.testing.assert_allclose(new["w"], (1.0 * 100 + 4.0 * 200) / 300)  # b weighs 2 x 100, not 10 million
    assert state.round_record(2)["clients"]["b"]["num_examples"] == 10_000_000  # what it claimed stays on record
    assert state.round_record(2)["clients"]["b"]["weight"] == 200


def test_an_update_far_from_the_others_is_screened_out_and_counted():
    from reid_core.federation.core import FederationCore
    from reid_core.federation.screening import Screening

    state = ServerState(global_arrays=arrays(0.0))
    core = FederationCore(state, min_clients=2, screening=Screening(outlier_k=5.0))
    honest = {n: (arrays(v), {"num-examples": 10}) for n, v in (("a", 1.0), ("b", 1.1), ("c", 0.9))}
    new, _ = core.aggregate(1, {**honest, "evil": (arrays(100.0), {"num-examples": 10})})
    np.testing.assert_allclose(new["w"], 1.0, rtol=1e-6)
    rejected = state.round_record(1)["rejected"]
    assert [r["client"] for r in rejected] == ["evil"] and rejected[0]["phase"] == "screening"
    assert "median" in rejected[0]["reason"] and "evil" not in state.client_arrays


def test_no_edge_passes_the_share_cap():
    from reid_core.federation.core import FederationCore
    from reid_core.federation.screening import Screening

    state = ServerState(global_arrays=arrays(0.0))
    core = FederationCore(state, min_clients=1, screening=Screening(max_share=0.5))
    new, _ = core.aggregate(1, {"a": (arrays(1.0), {"num-examples": 900}), "b": (arrays(3.0), {"num-examples": 100})})
    np.testing.assert_allclose(new["w"], 2.0)  # 50 : 50 instead of 90 : 10


def test_a_fraction_of_the_edges_trains_drawn_by_name_and_every_edge_evaluates():
    names = {100 + i: f"e{i}" for i in range(6)}
    st = FedUReIDStrategy(FederationCore(ServerState(global_arrays=arrays(0.0)), min_clients=2,
                                         fraction_train=0.5, seed=7), total_rounds=5)
    trained = st.configure_train(1, to_record(st.state.global_arrays), ConfigRecord(), FakeGrid(names))
    got = sorted(names[m.metadata.dst_node_id] for m in trained)
    assert len(got) == 3 and got == st.core.train_edges(1, names.values())
    # the same edges whichever node ids they hold now (a restart gives new ones)
    again = FedUReIDStrategy(FederationCore(ServerState(global_arrays=arrays(0.0)), min_clients=2,
                                            fraction_train=0.5, seed=7), total_rounds=5)
    renamed = {200 + i: n for i, n in enumerate(reversed(list(names.values())))}
    assert sorted(renamed[m.metadata.dst_node_id] for m in again.configure_train(
        1, to_record(again.state.global_arrays), ConfigRecord(), FakeGrid(renamed))) == got
    evaluated = st.configure_evaluate(1, to_record(st.state.global_arrays), ConfigRecord(), FakeGrid(names))
    assert len(evaluated) == 6


def test_a_node_that_does_not_tell_its_name_gets_no_training():
    # a killed SuperNode stays listed a while; its name query goes unanswered
    st, grid = strategy(), FakeGrid({11: "a", 22: "b", 33: None})
    msgs = st.configure_train(1, to_record(st.state.global_arrays), ConfigRecord(), grid)
    assert sorted(m.metadata.dst_node_id for m in msgs) == [11, 22]
