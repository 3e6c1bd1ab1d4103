"""Tests for reid_core.personalization.personalized_clustering: merge amounts, the inverse-count estimate, Profiler state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_core.runtime import knn
from reid_core.personalization import personalized_clustering as profiler_module
from reid_core.config.schema import ClusterConfig
from reid_core.personalization.identity_count import IdentityEstimate, estimate_num_identities
from reid_core.personalization.personalized_clustering import (
    Profiler,
    fixed_merge_amount,
    personalized_merge_amount,
)


pytestmark = pytest.mark.usefixtures("single_thread")  # fixture in conftest.py


def identities(num_ids: int, low: int, high: int, noise: float = 0.5, cam_shift: float = 0.0, seed: int = 0):
    """Gaussian identities of low..high images in d=64, 4 cameras; returns (feats, ids, cams).

    Centres ~ N(0, I), images = centre + noise * N(0, I) (+ a shift per camera).
    """
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(num_ids), rng.integers(low, high + 1, num_ids))
    cams = rng.integers(0, 4, len(ids))
    feats = (rng.standard_normal((num_ids, 64))[ids] + cam_shift * rng.standard_normal((4, 64))[cams]
             + noise * rng.standard_normal((len(ids), 64)))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return feats.astype(np.float32), ids, cams


# ---- merge amounts -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("n", "mp", "expected"), [(12936, 0.05, 646), (632, 0.05, 31), (100, 0.29, 29), (0, 0.05, 0)]
)
def test_fixed_merge_amount(n, mp, expected):
    assert fixed_merge_amount(n, mp) == expected


@pytest.mark.parametrize(("args", "message"), [((-1, 0.05), "num_images"), ((10, 1.5), "merge_percent")])
def test_fixed_merge_amount_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        fixed_merge_amount(*args)


@pytest.mark.parametrize(
    ("clusters", "target", "left", "expected"),
    [(8, 2, 3, 2), (6, 2, 2, 2), (4, 2, 1, 2), (10, 3, 3, 2), (3, 5, 2, 0), (5, 5, 1, 0), (100, 1, 1, 99)],
)
def test_personalized_merge_amount(clusters, target, left, expected):
    """Poster example 8 -> 6 -> 4 -> 2 with 2 merges per round; never below target."""
    assert personalized_merge_amount(clusters, target, left) == expected


@pytest.mark.parametrize(
    ("args", "message"), [((5, 2, 0), "rounds_left"), ((0, 2, 1), ">= 1"), ((5, 0, 1), ">= 1")]
)
def test_personalized_merge_amount_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        personalized_merge_amount(*args)


# ---- identity estimate -------------------------------------------------------------

@pytest.mark.parametrize(
    ("num_ids", "low", "high"), [(8, 2, 20), (40, 2, 20), (120, 2, 10), (150, 2, 2), (60, 1, 30)]
)
def test_estimate_exact_when_identities_separate(num_ids, low, high):
    feats, _, _ = identities(num_ids, low, high, noise=0.4, seed=num_ids)
    assert estimate_num_identities(feats) == num_ids


@pytest.mark.parametrize(("num_ids", "low", "high"), [(150, 2, 2), (100, 2, 6), (60, 2, 20)])
def test_estimate_within_20_percent_on_overlapping_identities(num_ids, low, high):
    """Noise 0.8 in d=64: some images are nearer another identity than their own."""
    feats, _, _ = identities(num_ids, low, high, noise=0.8, seed=num_ids)
    assert abs(estimate_num_identities(feats) - num_ids) <= 0.2 * num_ids


def test_camera_ids_remove_camera_split():
    """A camera shift splits identities per camera unless camera means are removed."""
    feats, _, cams = identities(50, 4, 16, noise=0.5, cam_shift=1.0, seed=4)
    assert estimate_num_identities(feats) > 150  # about one cluster per (identity, camera)
    assert abs(estimate_num_identities(feats, camids=cams) - 50) <= 2


def test_estimate_rejects_bad_camids():
    feats, _, _ = identities(5, 2, 3)
    with pytest.raises(ValueError, match="camids"):
        estimate_num_identities(feats, camids=np.zeros(3))


def test_estimate_tiny_inputs():
    assert estimate_num_identities(np.eye(2, dtype=np.float32)) == 2


# ---- Profiler -----------------------------------------------------------------------

def test_fixed_profiler_uses_image_count():
    prof = Profiler(ClusterConfig(mode="fixed", merge_percent=0.05), total_merge_steps=19)
    assert prof.num_merge(0, 100) == 5  # round 0: every image is a cluster
    assert prof.num_merge(1, 95) == 5
    assert prof.num_merge(18, 3) == 2  # capped at C - 1
    assert prof.num_merge(19, 10) == 0  # past the last merge step


def test_personalized_profiler_with_known_identities():
    prof = Profiler(ClusterConfig(mode="personalized", num_identities=40), total_merge_steps=3)
    assert [prof.num_merge(0, 100), prof.num_merge(1, 80), prof.num_merge(2, 60)] == [20, 20, 20]


def fake_estimates(monkeypatch, *estimates):
    """The profiler's estimator answers `estimates` in turn; returns the list of feature counts it saw."""
    calls, answers = [], list(estimates)

    def fake(features, camids=None):
        calls.append(len(features))
        return answers.pop(0)

    monkeypatch.setattr(profiler_module, "estimate_identities", fake)
    return calls


def test_per_camera_profiler_estimates_every_round_and_restores(monkeypatch):
    calls = fake_estimates(monkeypatch, IdentityEstimate(10, True), IdentityEstimate(10, True))
    feats = np.zeros((100, 4), dtype=np.float32)
    prof = Profiler(ClusterConfig(mode="personalized", estimator="per_camera"), total_merge_steps=3)
    assert prof.num_merge(0, 100, features=feats) == 30
    assert prof.num_merge(1, 70, features=feats) == 30
    assert calls == [100, 100]
    restored = Profiler(ClusterConfig(mode="personalized", estimator="per_camera"), total_merge_steps=3)
    restored.load_state_dict(prof.state_dict())
    assert restored.state_dict() == {"num_images": 100, "estimated_identities": 10, "estimate_trusted": True,
                                     "trusted_counts": [10, 10]}
    assert restored.num_merge(2, 40) == 30  # no features needed any more
    assert calls == [100, 100]


def test_an_untrusted_estimate_merges_the_fixed_amount(monkeypatch):
    fake_estimates(monkeypatch, IdentityEstimate(10, False, reason="camera 1 (0.30)"))
    prof = Profiler(ClusterConfig(mode="personalized", merge_percent=0.05, estimator="per_camera"), total_merge_steps=3)
    assert prof.num_merge(0, 100, features=np.zeros((100, 4), dtype=np.float32)) == 5  # not (100 - 10) / 3


def test_the_edge_goes_by_the_median_of_its_trusted_estimates(monkeypatch):
    # untrusted until one is trusted; later untrusted ones change nothing; trusted ones enter the median
    fake_estimates(monkeypatch, IdentityEstimate(20, False), IdentityEstimate(40, True), IdentityEstimate(5, False),
                   IdentityEstimate(30, True), IdentityEstimate(33, True), IdentityEstimate(90, True))
    prof = Profiler(ClusterConfig(mode="personalized", estimator="per_camera"), total_merge_steps=3)
    feats = np.zeros((100, 4), dtype=np.float32)
    assert [prof.observe(feats, None).count for _ in range(6)] == [20, 40, 40, 35, 33, 36]
    assert [prof.estimate.trusted, prof.trusted_counts] == [True, [40, 30, 33, 90]]


def test_trusted_median_by_hand():
    from reid_core.personalization.personalized_clustering import trusted_median
    latest = IdentityEstimate(45, True, reason="r6")
    # demo airport, seed 0: 34, 36, 38, 42, 44, 45 after rounds 1-6 -> median 40 for 35 people (the latest: 45)
    assert trusted_median([34, 36, 38, 42, 44, 45], latest) == IdentityEstimate(40, True, (), "r6")
    assert trusted_median([7], latest).count == 7
    with pytest.raises(ValueError, match="trusted"):
        trusted_median([], latest)
    with pytest.raises(ValueError, match="trusted"):
        trusted_median([3], IdentityEstimate(3, False))


def test_profiler_state_without_the_history_restores_the_kept_count():
    prof = Profiler(ClusterConfig(mode="personalized", estimator="per_camera"), total_merge_steps=3)
    prof.load_state_dict({"num_images": 100, "estimated_identities": 12, "estimate_trusted": True})
    assert prof.trusted_counts == [12] and prof.estimate.count == 12


def test_inverse_count_profiler_estimates_once(monkeypatch):
    calls = []

    def fake_estimate(features, camids=None):
        calls.append(len(features))
        return 10

    monkeypatch.setattr(profiler_module, "estimate_num_identities", fake_estimate)
    feats = np.zeros((100, 4), dtype=np.float32)
    prof = Profiler(ClusterConfig(mode="personalized"), total_merge_steps=3)
    assert not prof.wants_received_features
    assert [prof.num_merge(0, 100, features=feats), prof.num_merge(1, 70, features=feats)] == [30, 30]
    assert calls == [100]


def test_unknown_estimator_is_named():
    with pytest.raises(ValueError, match="estimator"):
        Profiler(ClusterConfig(mode="personalized", estimator="guess"), total_merge_steps=3)


def test_personalized_profiler_needs_features_or_count():
    prof = Profiler(ClusterConfig(mode="personalized"), total_merge_steps=3)
    with pytest.raises(ValueError, match="features"):
        prof.num_merge(0, 50)


@pytest.mark.parametrize(
    ("kwargs", "steps", "message"), [({"mode": "auto"}, 3, "mode"), ({}, 0, "total_merge_steps")]
)
def test_profiler_rejects_bad_config(kwargs, steps, message):
    with pytest.raises(ValueError, match=message):
        Profiler(ClusterConfig(**kwargs), total_merge_steps=steps)


def test_profiler_rejects_unknown_state():
    with pytest.raises(ValueError, match="unknown"):
        Profiler(ClusterConfig(), 3).load_state_dict({"mystery": 1})


def test_camera_floor_keeps_one_image_per_camera_on_average():
    from reid_core.personalization.personalized_clustering import camera_floor
    cams = np.array([0, 1] * 50)  # 100 images, 2 cameras -> floor 50
    assert camera_floor(cams) == 50 and camera_floor(np.array([0, 1, 2, 2])) == 2  # ceil(4 / 3)
    with pytest.raises(ValueError, match="camids"):
        camera_floor(np.array([]))
    # personalized, the count's clusters (20) below the floor (50): the baseline's pace (5% of N), down to the floor
    prof = Profiler(ClusterConfig(mode="personalized", num_identities=20, camera_floor=True), total_merge_steps=2)
    assert [prof.num_merge(0, 100, camids=cams), prof.num_merge(1, 95, camids=cams)] == [5, 5]
    assert prof.num_merge(1, 52, camids=cams) == 2
    # the count's clusters (2 x 30 = 60) above the floor: the count sets the pace, (100 - 60) / 2
    above = Profiler(ClusterConfig(mode="personalized", num_identities=30, target_ratio=2.0, camera_floor=True),
                     total_merge_steps=2)
    assert above.num_merge(0, 100, camids=cams) == 20
    # fixed 30% of N: 30 asked, 10 allowed at C = 60
    fixed = Profiler(ClusterConfig(mode="fixed", merge_percent=0.3, camera_floor=True), total_merge_steps=5, num_images=100)
    assert fixed.num_merge(1, 60, camids=cams) == 10 and fixed.num_merge(2, 50, camids=cams) == 0
    with pytest.raises(ValueError, match="camera_floor"):
        fixed.num_merge(1, 60)


def test_max_merge_percent_caps_each_personalized_step():
    # target 40 of 100 in 3 steps asks 20 a step; the cap (10% of N = 10) allows 10 a step
    capped = Profiler(ClusterConfig(mode="personalized", num_identities=40, max_merge_percent=0.1), total_merge_steps=3)
    assert [capped.num_merge(0, 100), capped.num_merge(1, 90), capped.num_merge(2, 80)] == [10, 10, 10]
    # a step that asks less than the cap is unchanged: 45 -> 40 in the last step
    assert capped.num_merge(2, 45) == 5
    uncapped = Profiler(ClusterConfig(mode="personalized", num_identities=40), total_merge_steps=3)
    assert uncapped.num_merge(0, 100) == 20


def test_max_merge_percent_is_checked_by_the_settings():
    from reid_core.config.settings import load_settings
    with pytest.raises(ValueError, match="pc.max_merge_percent"):
        load_settings(["experiment=smoke", "pc.max_merge_percent=1.5"], check_data=False)


def test_target_ratio_ends_above_the_identity_count():
    prof = Profiler(ClusterConfig(mode="personalized", num_identities=20, target_ratio=1.5), total_merge_steps=2)
    assert [prof.num_merge(0, 100), prof.num_merge(1, 65)] == [35, 35]  # ends at 30 = 1.5 x 20


def test_target_ratio_below_one_is_refused_naming_the_key():
    from reid_core.config.settings import load_settings

    with pytest.raises(ValueError, match="pc.target_ratio"):
        load_settings(["experiment=smoke", "pc.target_ratio=0.5"], check_data=False)
