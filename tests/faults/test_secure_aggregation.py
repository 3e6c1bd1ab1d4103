"""Secure aggregation (SecAgg+) over Flower's wire format: the ServerApp gets masked vectors only,
their sum is FedAvg of the true changes within the quantisation bound, and edges may drop."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Error, Message
from flwr.common import bytes_to_ndarray

import client_app.secure as secure
from federations import CLIENTS, make_grid, run_config, run_federation
from harness import EDGE_THREAD_PREFIX
from reid_core.federation.secure_sum import float_keys

pytestmark = pytest.mark.faults

SECURE = ("pu.where=edge", "federation.secure_aggregation=true")
CLIP, LEVELS = 8.0, 4194304  # the config's secagg_clipping_range, secagg_quantization_range


def collects(request: Message) -> bool:
    """Whether a request is the protocol's stage that trains and collects the masked vectors."""
    return request.has_content() and "fitins.config" in request.content.config_records


@pytest.fixture
def true_changes(monkeypatch):
    """Each edge's change as it computed it, before masking: {edge: [round 1's, round 2's, ...]}."""
    seen: dict[str, list[list[np.ndarray]]] = {}
    original = secure.model_change

    def recording(trained, sent):
        change = original(trained, sent)
        seen.setdefault(threading.current_thread().name.removeprefix(EDGE_THREAD_PREFIX), []).append(change)
        return change

    monkeypatch.setattr(secure, "model_change", recording)
    return seen


def secure_run(smoke_root: Path, tmp_path: Path, *extra: str, drop: dict[str, int] | None = None,
               drop_keys: str | None = None):
    """Two secure rounds; `drop` {edge: round}: that edge trains, then its masked vector is lost;
    `drop_keys`: that edge's reply in round 2's share-keys stage is lost."""
    rc = run_config(tmp_path / "run", CLIENTS, smoke_root, *SECURE, *extra, rounds=2)
    grid = make_grid(smoke_root, tmp_path / "edge_state", rc)
    for name, rnd in (drop or {}).items():
        def lost(delivered, reply, rnd=rnd):
            config = delivered.content.config_records.get("fitins.config")
            if collects(delivered) and int(config["server-round"]) == rnd:
                return Message(Error(code=0, reason="the edge died"), reply_to=delivered)
            return reply
        grid.edge(name).tamper = lost
    if drop_keys:
        shared = []

        def lost_keys(delivered, reply):
            configs = reply.content.config_records.get("secaggplus_configs") if reply.has_content() else None
            if configs is not None and "dsts" in configs:  # a share-keys reply
                shared.append(1)
                if len(shared) == 2:
                    return Message(Error(code=0, reason="the edge died"), reply_to=delivered)
            return reply
        grid.edge(drop_keys).tamper = lost_keys
    return run_federation(grid, rc, tmp_path / "run", smoke_root, tmp_path / "edge_state")


def rounds_of(run):
    """Per round: (the model sent to train from, the global model after it, stage-2 exchanges)."""
    collect = [x for x in run.grid.exchanges if collects(x.request)]
    evaluate = [x for x in run.grid.exchanges if x.message_type == "evaluate"]
    out = []
    for rnd in (1, 2):
        xs = [x for x in collect if int(x.request.content["fitins.config"]["server-round"]) == rnd]
        sent = [bytes_to_ndarray(a.data) for a in xs[0].request.content["fitins.parameters"].values()]
        after = next(x for x in evaluate if x.server_round == rnd).request.content["arrays"]
        out.append((sent, {k: v.numpy() for k, v in after.items()}, xs))
    return out


def test_the_server_sees_masked_vectors_whose_sum_is_fedavg_of_the_true_changes(smoke_root, tmp_path, true_changes):
    run = secure_run(smoke_root, tmp_path)
    assert run.error is None
    for rnd, (sent, after, xs) in enumerate(rounds_of(run), start=1):
        assert sorted(x.edge for x in xs) == list(CLIENTS)
        counts = {x.edge: int(x.reply.content["metrics"]["num-examples"]) for x in xs}
        weights = {e: round(n / 10000 * LEVELS) / LEVELS for e, n in counts.items()}  # the mod's weight
        keys = float_keys(after)
        for x in xs:  # what reached the ServerApp: no array of the model, a masked vector
            assert all(len(r) == 0 for r in x.reply.content.array_records.values()), x.edge
            masked = [bytes_to_ndarray(b) for b in x.reply.content["secaggplus_configs"]["masked_params"]]
            change = true_changes[x.edge][rnd - 1]
            unmasked = [(np.clip(c * weights[x.edge], -CLIP, CLIP) + CLIP) * LEVELS / (2 * CLIP) for c in change]
            close = sum(int(np.sum(np.abs(m.astype(np.float64) - u) <= 1)) for m, u in zip(masked[1:], unmasked))
            assert close < 0.01 * sum(u.size for u in unmasked), (x.edge, close)  # masks hide the quantised change
        total = sum(weights.values())
        expected = [sum(weights[e] * true_changes[e][rnd - 1][i] for e in counts) / total for i in range(len(keys))]
        bound = len(counts) * (2 * CLIP / LEVELS) / total * 1.01 + 1e-7
        moved = [after[k].astype(np.float64) - s.astype(np.float64) for k, s in zip(after, sent) if k in keys]
        worst = max(float(np.max(np.abs(m - e))) for m, e in zip(moved, expected))
        assert worst <= bound, (rnd, worst, bound)
        assert max(float(np.max(np.abs(e))) for e in expected) > 10 * bound  # the model did move
        record = run.metrics["rounds"][rnd - 1]
        assert record["secure"] and record["rejected"] == []
        assert {c for c, m in record["clients"].items() if "num_examples" in m} == set(CLIENTS)


def test_an_edge_lost_mid_protocol_leaves_the_others_sum(smoke_root, tmp_path, true_changes):
    run = secure_run(smoke_root, tmp_path, drop={"edge_c": 2})
    assert run.error is None
    sent, after, xs = rounds_of(run)[1]
    counted = [x.edge for x in xs if not x.reply.has_error()]
    assert sorted(counted) == ["edge_a", "edge_b"]
    weights = {x.edge: round(int(x.reply.content["metrics"]["num-examples"]) / 10000 * LEVELS) / LEVELS
               for x in xs if x.edge in counted}
    keys = float_keys(after)
    expected = [sum(w * true_changes[e][1][i] for e, w in weights.items()) / sum(weights.values())
                for i in range(len(keys))]
    moved = [after[k].astype(np.float64) - s.astype(np.float64) for k, s in zip(after, sent) if k in keys]
    bound = 2 * (2 * CLIP / LEVELS) / sum(weights.values()) * 1.01 + 1e-7
    assert max(float(np.max(np.abs(m - e))) for m, e in zip(moved, expected)) <= bound
    assert "rank1" in run.metrics["rounds"][1]["clients"]["edge_c"]  # still evaluated


def test_below_the_threshold_the_round_ends_naming_the_missing_and_keeps_the_model(smoke_root, tmp_path,
                                                                                  true_changes):
    run = secure_run(smoke_root, tmp_path, drop={"edge_b": 2, "edge_c": 2})
    assert run.error is None
    sent, after, _ = rounds_of(run)[1]
    assert all(np.array_equal(a, s) for a, s in zip(after.values(), sent))  # nothing half-aggregated
    rejected = run.metrics["rounds"][1]["rejected"]
    assert sorted(r["client"] for r in rejected) == ["edge_b", "edge_c"]
    assert all("secure aggregation halted" in r["reason"] and "'train and mask'" in r["reason"] for r in rejected)
    assert "secure aggregation halted" in run.logs.text(edge_side=False)


def test_an_edge_lost_before_training_halts_the_round_naming_it(smoke_root, tmp_path, true_changes):
    """Flower's SecAgg+ cannot recover an edge lost while keys are shared: the round ends, the model is kept."""
    run = secure_run(smoke_root, tmp_path, drop_keys="edge_c")
    assert run.error is None
    sent, after, _ = rounds_of(run)[1]
    assert all(np.array_equal(a, s) for a, s in zip(after.values(), sent))
    rejected = run.metrics["rounds"][1]["rejected"]
    assert [(r["client"], "'share keys'" in r["reason"]) for r in rejected] == [("edge_c", True)]
    assert "num_examples" not in run.metrics["rounds"][1]["clients"]["edge_a"]


def test_an_edge_that_demands_secure_aggregation_refuses_a_plain_round(smoke_root, tmp_path):
    rc = run_config(tmp_path / "run", CLIENTS, smoke_root, rounds=1)
    grid = make_grid(smoke_root, tmp_path / "edge_state", rc)
    grid.edge("edge_a").context.node_config["secure-aggregation"] = "true"
    run = run_federation(grid, rc, tmp_path / "run", smoke_root, tmp_path / "edge_state")
    train = [x for x in run.grid.exchanges if x.edge == "edge_a" and x.message_type == "train"]
    assert train and all(x.reply.has_error() and "secure-aggregation" in x.reply.error.reason for x in train)
    assert "num_examples" not in run.metrics["rounds"][0]["clients"].get("edge_a", {})


# What a train reply may carry in secure mode: Flower's fit layout with its arrays emptied, the masked
# vector, keys and shares of the protocol, and (as in the plain mode) scalar metrics and the edge's name.
SECURE_ALLOWED = {"fitres.parameters": "ArrayRecord", "fitres.num_examples": "MetricRecord",
                  "fitres.metrics": "ConfigRecord", "fitres.status": "ConfigRecord", "metrics": "MetricRecord",
                  "info": "ConfigRecord", "secaggplus_configs": "ConfigRecord"}


def test_on_the_wire_a_secure_edge_sends_no_model_array_and_no_private_string(smoke_root, tmp_path, true_changes):
    from federations import private_strings

    run = secure_run(smoke_root, tmp_path)
    secrets = private_strings(smoke_root, tmp_path / "edge_state")
    train = [x for x in run.grid.exchanges if x.message_type == "train"]
    assert len(train) == 2 * 4 * len(CLIENTS)  # 2 rounds x the protocol's 4 stages x 3 edges
    for x in train:
        content = x.reply.content
        kinds = {name: type(record).__name__ for name, record in content.items()}
        assert set(kinds) <= set(SECURE_ALLOWED) and all(SECURE_ALLOWED[k] == v for k, v in kinds.items()), kinds
        assert all(len(r) == 0 for r in content.array_records.values()), x.edge
        for name, record in content.config_records.items():
            for key, value in record.items():
                for v in value if isinstance(value, list) else [value]:
                    text = v.decode("latin-1") if isinstance(v, bytes) else str(v)
                    assert not [s for s in secrets if s in text], (x.edge, name, key)
