"""Differential privacy's pieces on hand-worked arrays: clipping, the noise's scale, the noise."""

import numpy as np
import pytest

from reid_core.config.settings import ConfigError, load_settings
from reid_core.config.schema import PersonalizedUpdate
from reid_core.federation.core import FederationCore
from reid_core.federation.privacy import VARIANCE_FLOOR, Privacy, add_noise, clip_model, noise_std
from reid_core.federation.state import ServerState


def model(w, steps=3):
    return {"w": np.array(w, dtype=np.float32), "steps": np.array(steps, dtype=np.int64)}


def test_clipping_bounds_the_float_change_and_keeps_the_counters():
    clipped, norm = clip_model(model([4.0, 4.0], steps=9), model([1.0, 0.0]), 2.5)  # change (3, 4), norm 5
    assert norm == 5.0 and clipped["w"].tolist() == [2.5, 2.0] and clipped["steps"] == 9
    same, _ = clip_model(model([1.5, 0.0]), model([1.0, 0.0]), 2.5)
    assert same["w"].tolist() == [1.5, 0.0]


def test_the_noise_scales_with_the_largest_share():
    assert noise_std(1.0, 2.0, [1, 1, 1, 1]) == pytest.approx(0.5)  # Flower's z * C / K for equal weights
    assert noise_std(1.0, 2.0, [3, 1]) == pytest.approx(1.5)  # one edge with 3/4 of the weight
    with pytest.raises(ValueError):
        noise_std(1.0, 2.0, [])


def test_noise_has_its_scale_and_spares_the_counters():
    noised = add_noise({"w": np.zeros(100_000, np.float32), "steps": np.array(3)}, 0.1, np.random.default_rng(0))
    assert noised["w"].dtype == np.float32 and noised["steps"] == 3
    assert abs(float(noised["w"].std()) - 0.1) < 0.002 and abs(float(noised["w"].mean())) < 0.002


def test_noise_leaves_no_batchnorm_variance_below_its_floor():
    arrays = {"bn.running_var": np.full(10_000, 0.05, np.float32), "bn.running_mean": np.zeros(10_000, np.float32)}
    noised = add_noise(arrays, 0.6, np.random.default_rng(0))
    assert float(noised["bn.running_var"].min()) == pytest.approx(VARIANCE_FLOOR)
    assert float((noised["bn.running_var"] > VARIANCE_FLOOR).mean()) == pytest.approx(0.53, abs=0.02)  # P(N > -0.05/0.6)
    assert float(noised["bn.running_mean"].min()) < -1.0  # the other arrays keep their noise


def test_the_core_clips_each_change_noises_the_mean_and_records_it():
    core = FederationCore(ServerState(global_arrays=model([0.0, 0.0])), pu=PersonalizedUpdate(where="edge"), min_clients=1,
                          privacy=Privacy(noise_multiplier=1e-9, clipping_norm=1.0), account=lambda dp: dp.update(epsilon=7.0, delta=1e-5))
    new, _ = core.aggregate(1, {"a": (model([30.0, 40.0]), {"num-examples": 10}),   # change norm 50 -> 1
                                "b": (model([0.0, 0.5]), {"num-examples": 10})})
    assert new["w"] == pytest.approx([0.3, 0.65], abs=1e-6)  # mean of (0.6, 0.8) and (0, 0.5)
    dp = core.state.round_record(1)["dp"]
    assert dp["edges"] == 2 and dp["noise_std"] == pytest.approx(0.5e-9) and dp["epsilon"] == 7.0


def test_dp_refuses_what_its_scale_does_not_cover():
    with pytest.raises(ConfigError, match="needs pu.where=edge"):
        load_settings(["experiment=smoke", "federation.dp_noise_multiplier=1.0"])
    with pytest.raises(ConfigError, match="dp_delta"):
        load_settings(["experiment=smoke", "federation.dp_noise_multiplier=1.0", "pu.where=edge", "federation.dp_delta=1"])
    assert load_settings(["experiment=smoke", "federation.dp_noise_multiplier=1.0", "pu.where=edge"])


def test_the_report_tables_the_privacy_spent():
    from reid_core.federation.report import privacy_table

    dp = {"noise_multiplier": 1.0, "clipping_norm": 0.5, "noise_std": 0.1, "edges": 3}
    metrics = {"rounds": [{"round": 1, "dp": {**dp, "epsilon": 3.21, "delta": 1e-05}}, {"round": 2, "dp": dp}]}
    table = privacy_table(metrics)
    assert "| 1 | 1 | 0.5 | 0.1 | 3.21 | 1e-05 |" in table and "| 2 | 1 | 0.5 | 0.1 | - | - |" in table
    assert privacy_table({"rounds": [{"round": 1}]}) == ""
