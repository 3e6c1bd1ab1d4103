"""Robust aggregation through Flower's own rules, driven by the federation core: worked cases."""

import numpy as np
import pytest

from fedureid.aggregators import aggregation_rule
from reid_core.config.choices import AGGREGATIONS
from reid_core.federation.core import FederationCore
from reid_core.federation.state import ServerState


def model(w: float) -> dict:
    return {"w": np.full(3, w, np.float32), "n": np.array(int(w), np.int64)}


def aggregate(name: str, values: dict, counts: dict | None = None, **kw):
    core = FederationCore(ServerState(global_arrays=model(0.0)), min_clients=1,
                          rule=aggregation_rule(name, **kw))
    return core.aggregate(1, {n: (model(v), {"num-examples": (counts or {}).get(n, 10)}) for n, v in values.items()})[0]


HOSTILE = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1000.0}


def test_fedavg_is_the_cores_own_and_is_pulled_by_a_hostile_update():
    assert aggregation_rule("fedavg") is None
    assert float(aggregate("fedavg", HOSTILE)["w"][0]) == pytest.approx(251.5)


@pytest.mark.parametrize("name, expected", [("median", 2.5), ("trimmed", 2.5), ("krum", 1.0), ("multikrum", 2.0)])
def test_robust_rules_hold_against_one_hostile_update(name, expected):
    out = aggregate(name, HOSTILE, num_malicious=1, trim=0.25)  # krum: a, b, c tie; the first honest one wins
    assert float(out["w"][0]) == pytest.approx(expected)
    assert out["w"].dtype == np.float32 and int(out["n"]) == 1000  # integer buffers: their maximum


def test_median_ignores_size_multikrum_weighs_by_it():
    counts = {"a": 1000, "b": 10, "c": 10}
    assert float(aggregate("median", {"a": 1.0, "b": 2.0, "c": 3.0}, counts)["w"][0]) == pytest.approx(2.0)
    # multikrum keeps n - f = 2 closest (a, b), averaged by #images
    out = aggregate("multikrum", {"a": 1.0, "b": 2.0, "c": 30.0}, counts, num_malicious=1)
    assert float(out["w"][0]) == pytest.approx((1.0 * 1000 + 2.0 * 10) / 1010)


def test_bulyan_with_too_few_edges_keeps_the_global_model():
    assert aggregate("bulyan", HOSTILE, num_malicious=1) is None  # needs 4f + 3 = 7 edges


def test_every_name_is_known_and_an_unknown_one_is_refused():
    assert all(aggregation_rule(n) is None or callable(aggregation_rule(n)) for n in AGGREGATIONS)
    with pytest.raises(ValueError, match="federation.aggregation"):
        aggregation_rule("mean-of-means")
