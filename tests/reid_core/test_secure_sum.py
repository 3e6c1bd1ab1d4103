"""What secure aggregation sums and how the cloud applies it, on hand-worked arrays."""

import numpy as np
import pytest

from reid_core.config.settings import ConfigError, load_settings
from reid_core.federation.secure_sum import apply_change, clip_change, float_keys, model_change


def model(w, b, steps):
    return {"w": np.array(w, dtype=np.float32), "steps": np.array(steps, dtype=np.int64), "b": np.array(b, np.float32)}


def test_the_change_covers_the_float_arrays_in_order():
    sent, trained = model([1.0, 2.0], [0.5], 3), model([1.5, 1.0], [0.5], 7)
    assert float_keys(sent) == ["w", "b"]
    change = model_change(trained, sent)
    assert [c.tolist() for c in change] == [[0.5, -1.0], [0.0]] and change[0].dtype == np.float64


@pytest.mark.parametrize("trained, message", [({"w": np.zeros(2, np.float32)}, "lacks 'b'"),
                                              (model([1.0, 2.0, 3.0], [0.5], 3), "shape of 'w'"),
                                              (model([np.nan, 2.0], [0.5], 3), "'w' holds NaN")])
def test_a_change_that_cannot_be_summed_is_refused(trained, message):
    with pytest.raises(ValueError, match=message):
        model_change(trained, model([1.0, 2.0], [0.5], 3))


def test_clipping_scales_the_whole_change_to_the_norm():
    change = [np.array([3.0, 0.0]), np.array([4.0])]  # norm 5
    clipped, norm = clip_change(change, 2.5)
    assert norm == 5.0 and [c.tolist() for c in clipped] == [[1.5, 0.0], [2.0]]
    assert clip_change(change, 0)[0] is not change and clip_change(change, 0)[0][1].tolist() == [4.0]  # 0: off
    assert clip_change(change, 10)[0][0].tolist() == [3.0, 0.0]  # within the norm: unchanged


def test_the_mean_change_moves_the_float_arrays_and_keeps_the_counters():
    out = apply_change(model([1.0, 2.0], [0.5], 3), [np.array([0.25, -0.5]), np.array([1.0])])
    assert out["w"].tolist() == [1.25, 1.5] and out["b"].tolist() == [1.5] and out["steps"] == 3
    assert out["w"].dtype == np.float32
    with pytest.raises(ValueError, match="holds 1 arrays, the model 2"):
        apply_change(model([1.0, 2.0], [0.5], 3), [np.zeros(2)])
    with pytest.raises(ValueError, match="NaN"):
        apply_change(model([1.0, 2.0], [0.5], 3), [np.array([np.inf, 0.0]), np.zeros(1)])


@pytest.mark.parametrize("overrides, message", [
    (["pu.where=cloud"], "needs pu.where=edge"),
    (["pu.where=edge", "federation.aggregation=median"], "only aggregation=fedavg"),
    (["pu.where=edge", "federation.secagg_modulus_range=5000000000"], "power of 2"),
    (["pu.where=edge", "federation.secagg_num_shares=2"], "count > 2"),
    (["pu.where=edge", "federation.fraction_train=0.5"], "SecAgg\\+ is run over every edge"),
])
def test_secure_aggregation_refuses_what_it_cannot_do(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(["experiment=smoke", "federation.secure_aggregation=true", *overrides])
    assert load_settings(["experiment=smoke", "federation.secure_aggregation=true", "pu.where=edge"])
