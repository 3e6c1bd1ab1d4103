"""Personalized Update and FedAvg maths on hand-worked arrays."""

import re

import numpy as np
import pytest

from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.core import FederationCore
from reid_core.federation.state import ServerState
from reid_core.federation.aggregation import (batchnorm_keys, check_update, edge_start, interpolate, personalize,
                                             weighted_average)


def model(w: float, n: int = 0) -> dict:
    return {"w": np.full((2, 2), w, np.float32), "bn.num_batches_tracked": np.array(n, np.int64)}


def with_bn(w: float, n: int = 0) -> dict:
    """A conv followed by a BatchNorm layer, every float array filled with `w`."""
    return {"conv.weight": np.full(3, w, np.float32), "bn.weight": np.full(2, w, np.float32),
            "bn.bias": np.full(2, w, np.float32), "bn.running_mean": np.full(2, w, np.float32),
            "bn.running_var": np.full(2, w, np.float32), "bn.num_batches_tracked": np.array(n, np.int64)}


def test_batchnorm_keys_are_the_layers_beside_running_statistics():
    arrays = {**with_bn(1.0), "fc.weight": np.zeros(2), "fc.bias": np.zeros(2), "embed_bn.running_mean": np.zeros(2),
              "embed_bn.running_var": np.ones(2)}
    assert batchnorm_keys(arrays) == {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                                      "bn.num_batches_tracked", "embed_bn.running_mean", "embed_bn.running_var"}


@pytest.mark.parametrize("mu", [0.0, 0.5, 1.0])
def test_local_bn_keeps_the_edges_batchnorm_and_mixes_the_rest(mu):
    out = interpolate(with_bn(2.0, 5), with_bn(10.0, 7), mu, local_bn=True)
    np.testing.assert_allclose(out["conv.weight"], mu * 2.0 + (1 - mu) * 10.0, rtol=1e-6)
    for key in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        np.testing.assert_array_equal(out[key], 2.0)
    assert out["bn.num_batches_tracked"] == 5
    # edge PU gives the same model; no local model yet: the global one, BatchNorm included
    at_edge = edge_start(PersonalizedUpdate(mu, "edge", local_bn=True), with_bn(10.0, 7), with_bn(2.0, 5), True)
    for key, value in at_edge.items():
        np.testing.assert_array_equal(value, out[key])
    assert interpolate(None, with_bn(10.0), mu, local_bn=True)["bn.running_mean"][0] == 10.0


@pytest.mark.parametrize("mu", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_interpolate_mu(mu):
    out = interpolate(model(2.0, 5), model(10.0, 7), mu)
    np.testing.assert_allclose(out["w"], mu * 2.0 + (1 - mu) * 10.0, rtol=1e-6)
    assert out["bn.num_batches_tracked"] == 7  # integer buffers come from the global model
    assert out["w"].dtype == np.float32


def test_interpolate_without_local_model_gives_global():
    glob = model(3.0)
    out = interpolate(None, glob, 0.7)
    np.testing.assert_array_equal(out["w"], glob["w"])
    assert out["w"] is not glob["w"]


@pytest.mark.parametrize("mu", [-0.1, 1.5])
def test_interpolate_rejects_mu(mu):
    with pytest.raises(ValueError, match="mu"):
        interpolate(model(1.0), model(2.0), mu)


@pytest.mark.parametrize("values, key", [({"mu": 1.5}, "pu.mu"), ({"mu": True}, "pu.mu"), ({"where": "server"}, "pu.where")])
def test_personalized_update_refuses_what_it_cannot_do_naming_the_key(values, key):
    with pytest.raises(ValueError, match=rf"^{re.escape(key)}: "):
        PersonalizedUpdate(**values)


def test_personalized_update_starts_an_edge_from_what_was_mixed_wherever_it_was_mixed():
    local, glob = model(2.0, 5), model(10.0, 7)
    cloud, edge = PersonalizedUpdate(0.25), PersonalizedUpdate(0.25, "edge")
    sent = personalize(cloud, local, glob)  # the cloud mixes and sends theta_k
    for training in (True, False):
        np.testing.assert_array_equal(edge_start(cloud, sent, local, training)["w"], sent["w"])  # as sent
        np.testing.assert_array_equal(edge_start(edge, glob, local, training)["w"], sent["w"])  # or mixed here
        assert edge_start(edge, glob, None, training)["w"][0, 0] == 10.0  # no local model yet: the global one


@pytest.mark.parametrize("where", ["cloud", "edge"])
def test_train_from_global_trains_every_edge_from_the_global_model_and_evaluates_theta_k(where):
    local, glob = model(2.0, 5), model(10.0, 7)
    pu = PersonalizedUpdate(0.25, where, train_from="global")
    core = FederationCore(ServerState(global_arrays=glob, client_arrays={"a": local}), pu=pu)
    for training, expected in ((True, 10.0), (False, 0.25 * 2.0 + 0.75 * 10.0)):
        sent = core.downlink("a", glob, training)
        assert core.start_from(sent, training)(local)["w"][0, 0] == pytest.approx(expected)
        assert core.received("a", glob, training)(local)["w"][0, 0] == pytest.approx(expected)
        # what the cloud screens the update against is what the edge started from, wherever it was mixed
        assert core.edge_model("a", glob, training)["w"][0, 0] == pytest.approx(expected)
        assert sent["w"][0, 0] == pytest.approx(10.0 if where == "edge" else expected)  # the edge mixes: global sent
    assert not pu.mixes(training=True) and pu.mixes(training=False)
    assert PersonalizedUpdate(0.25).mixes(training=True)  # the paper: train from theta_k too


def test_train_from_names_its_key_when_unknown():
    with pytest.raises(ValueError, match=r"^pu.train_from: "):
        PersonalizedUpdate(0.5, train_from="local")


def test_interpolate_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        interpolate({"w": np.zeros(3, np.float32)}, {"w": np.zeros(4, np.float32)}, 0.5)


def test_weighted_average_by_examples():
    out = weighted_average([model(1.0, 3), model(4.0, 9)], [100, 200])
    np.testing.assert_allclose(out["w"], (1.0 * 100 + 4.0 * 200) / 300, rtol=1e-6)
    assert out["bn.num_batches_tracked"] == 9


def test_weighted_average_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        weighted_average([model(1.0), model(2.0)], [0, 0])
    with pytest.raises(ValueError, match="weights"):
        weighted_average([model(1.0)], [float("nan")])


def test_check_update():
    ref = model(1.0)
    assert check_update(model(2.0), ref) is None
    bad = model(2.0)
    bad["w"][0, 0] = np.nan
    assert "NaN" in check_update(bad, ref)
    assert "shape" in check_update({**ref, "w": np.zeros(3, np.float32)}, ref)
    assert "names" in check_update({"w": ref["w"]}, ref)
    assert "names" in check_update({**ref, "extra": ref["w"]}, ref)
