"""Personalized Update and FedAvg maths on hand-worked arrays."""

import numpy as np
import pytest

from reid_core.federation.aggregation import check_update, interpolate, weighted_average


def model(w: float, n: int = 0) -> dict:
    return {"w": np.full((2, 2), w, np.float32), "bn.num_batches_tracked": np.array(n, np.int64)}


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
