"""Each hostile kind against the federation core: with screening the global model is FedAvg of the honest edges.

Four edges of a small model with a BatchNorm variance; `d` misbehaves (reid_core/federation/misbehaviour.py)
after an honest round 1 as a deployed edge would. With screening on, round 2's global model equals
FedAvg of a, b, c to float precision; with it off, the same round shows the damage (so the test can fail).
"""

import numpy as np
import pytest

from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.aggregation import weighted_average
from reid_core.federation.core import FederationCore
from reid_core.federation.misbehaviour import CLAIMED_COUNT, misbehave
from reid_core.federation.screening import Screening, is_trained_weight
from reid_core.federation.state import ServerState

COUNTS = {"a": 300, "b": 200, "c": 250, "d": 280}
ON = Screening(count_growth=2.0, max_share=0.5, outlier_k=3.0, models=True)
OFF = Screening()


def start_model() -> dict:
    return {"conv.w": np.linspace(-1, 1, 4096, dtype=np.float32), "bn.running_var": np.full(8, 0.1, np.float32),
            "bn.num_batches_tracked": np.array(0, np.int64)}


def trained(name: str, received: dict, rnd: int) -> dict:
    """An honest edge's model: small weight changes of similar size; variances more than double (new data)."""
    rng = np.random.default_rng(hash((name, rnd)) % 2**32)
    return {"conv.w": (received["conv.w"] + rng.normal(0, 0.01, 4096)).astype(np.float32),
            "bn.running_var": (received["bn.running_var"] * rng.uniform(2.2, 3.0, 8)).astype(np.float32),
            "bn.num_batches_tracked": received["bn.num_batches_tracked"] + 10}


def boosted(model: dict, received: dict, count: int, seed: int = 0) -> tuple[dict, int]:
    """Model replacement shaped to pass the impossible-model screen: the weights' change x 10, statistics honest."""
    return {k: (received[k] + 10.0 * (v - received[k])).astype(v.dtype) if is_trained_weight(k, v) else v
            for k, v in model.items()}, count


def federate(kind, screening: Screening):
    """Two rounds (mu 0.5, PU at the cloud); `d` honest in round 1, `kind` (or `boosted`) in round 2.
    (core, honest FedAvg of round 2)"""
    core = FederationCore(ServerState(global_arrays=start_model()), pu=PersonalizedUpdate(0.5), min_clients=2, screening=screening)
    hostile = kind if callable(kind) else lambda *args, **kw: misbehave(kind, *args, **kw)
    for rnd in (1, 2):
        replies, honest = {}, {}
        for name, count in COUNTS.items():
            received = core.downlink(name, core.state.global_arrays, training=True)
            model = trained(name, received, rnd)
            honest[name] = model
            sent, n = hostile(model, received, count, seed=rnd) if name == "d" and rnd == 2 else (model, count)
            replies[name] = (sent, {"num-examples": n})
        if rnd == 2:
            names = ["a", "b", "c"]
            expected = weighted_average([honest[n] for n in names], [COUNTS[n] for n in names])
        core.aggregate(rnd, replies)
    return core, expected


@pytest.mark.parametrize("kind", ["scale", "flip", "noise", "stale"])
def test_with_screening_the_global_model_is_fedavg_of_the_honest_edges(kind):
    core, expected = federate(kind, ON)
    for key, value in expected.items():
        np.testing.assert_allclose(core.state.global_arrays[key], value, rtol=1e-6, atol=1e-7)
    screened = [r for r in core.state.round_record(2)["rejected"] if r["phase"] == "screening"]
    assert [r["client"] for r in screened] == ["d"]


@pytest.mark.parametrize("kind", ["scale", "flip", "noise", "stale"])
def test_without_screening_the_hostile_edge_moves_the_global_model(kind):
    core, expected = federate(kind, OFF)
    gap = float(np.abs(core.state.global_arrays["conv.w"] - expected["conv.w"]).max())
    assert gap > 1e-3, kind  # far past float precision (stale: its lost change, the smallest damage)
    assert core.state.round_record(2)["rejected"] == []


def test_the_lying_count_gets_no_more_than_the_capped_share():
    core, _ = federate("count", ON)
    clients = core.state.round_record(2)["clients"]
    assert clients["d"]["num_examples"] == CLAIMED_COUNT
    total = sum(m["weight"] for m in clients.values())
    assert clients["d"]["weight"] / total <= 0.5 + 1e-9
    # the growth bound alone: at most 2 x its first accepted count (280)
    core, _ = federate("count", Screening(count_growth=2.0))
    assert core.state.round_record(2)["clients"]["d"]["weight"] == pytest.approx(560)
    core, _ = federate("count", OFF)
    clients = core.state.round_record(2)["clients"]
    assert clients["d"]["weight"] / sum(m["weight"] for m in clients.values()) > 0.99


def test_a_boost_that_keeps_valid_statistics_is_left_out_by_the_norm_screen_alone():
    """The count bound and the impossible-model screen let it in; the outlier screen (k = 3) does not."""
    bounds = Screening(count_growth=2.0, models=True)
    core, expected = federate(boosted, bounds)
    assert core.state.round_record(2)["rejected"] == []
    assert float(np.abs(core.state.global_arrays["conv.w"] - expected["conv.w"]).max()) > 1e-2
    core, expected = federate(boosted, Screening(count_growth=2.0, outlier_k=3.0, models=True))
    np.testing.assert_allclose(core.state.global_arrays["conv.w"], expected["conv.w"], rtol=1e-6, atol=1e-7)
    assert [r["client"] for r in core.state.round_record(2)["rejected"]] == ["d"]
