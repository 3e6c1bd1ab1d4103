"""Tests for reid_core.personalization.identity_count: counting people per camera, and when to trust it."""

from __future__ import annotations

import numpy as np
import pytest

from reid_core.personalization.identity_count import (
    CameraCount,
    camera_count,
    duplicate_share,
    estimate_identities,
    is_trusted,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # fixture in conftest.py


def two_camera_edge(per_camera: list[int], seed: int = 0, dim: int = 64):
    """People seen by both cameras: person p has per_camera[p] near-duplicate images in each.

    A person's look in one camera = centre + 0.6 noise (a camera's view of them) + the camera's
    shift; each image = that look + 0.1 noise. Returns (features, camids, pids).
    """
    rng = np.random.default_rng(seed)
    shift = rng.normal(size=(2, dim)) * 2.0
    feats, cams, pids = [], [], []
    for pid, count in enumerate(per_camera):
        centre = rng.normal(size=dim)
        for cam in (0, 1):
            look = centre + 0.6 * rng.normal(size=dim) + shift[cam]
            feats.append(look + 0.1 * rng.normal(size=(count, dim)))
            cams += [cam] * count
            pids += [pid] * count
    return np.concatenate(feats).astype(np.float32), np.array(cams), np.array(pids)


def test_duplicate_share_against_the_reference_quantile():
    other = np.arange(1.0, 21.0)  # the 5% quantile: 1.95
    assert duplicate_share(np.array([0.5, 1.0, 1.9, 2.0, 10.0]), other, quantile=0.05) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="quantile"):
        duplicate_share(np.ones(3), other, quantile=1.0)
    with pytest.raises(ValueError, match="non-empty"):
        duplicate_share(np.ones(0), other)


def test_camera_count_by_hand():
    other = np.array([1.0, 1.2, 1.4])  # its 35% quantile: 1.14
    # two images near each other (1 near neighbour each: 1/2 + 1/2), one alone (1)
    within = np.array([[0.5, 3.0], [0.5, 3.0], [2.0, 3.0]])
    assert camera_count(within, other, share=0.6) == 2
    assert camera_count(within, other, share=0.05) == 3  # no near-duplicates: every image a person
    # in between: the camera's own split (Otsu on log distances) finds the pair's 0.01 short
    own = np.array([[0.01, 3.0], [0.01, 3.0], [3.0, 3.0]])
    assert camera_count(own, other, share=0.3) == 2
    assert camera_count(own, np.full(3, 0.005), share=0.6) == 3  # clear: nothing nearer than the reference
    with pytest.raises(ValueError, match="within_knn"):
        camera_count(within[0], other, share=0.6)


def test_trust_needs_every_major_camera_clear():
    clear_none = CameraCount(0, 100, 0.02, 100)
    clear_dups = CameraCount(1, 100, 0.80, 30)
    unclear = CameraCount(2, 100, 0.30, 60)
    minor_unclear = CameraCount(3, 10, 0.30, 8)  # under 10% of the images: does not decide
    assert is_trusted((clear_none, clear_dups))
    assert not is_trusted((clear_none, unclear))
    assert is_trusted((clear_none, clear_dups, minor_unclear))
    assert not is_trusted(())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_people_with_near_duplicates_in_both_cameras(seed):
    counts = np.random.default_rng(seed).integers(2, 7, size=60).tolist()
    feats, cams, _ = two_camera_edge(counts, seed=seed)
    est = estimate_identities(feats, cams)
    assert est.trusted and est.count == 60
    assert all(c.duplicate_share > 0.9 for c in est.cameras)


def test_one_image_of_each_person_per_camera_counts_half_the_images():
    """VIPeR's and PRID2011's shape: no near-duplicates anywhere; the count is N / 2."""
    feats, cams, _ = two_camera_edge([1] * 80)
    est = estimate_identities(feats, cams)
    assert est.trusted and est.count == 80
    assert all(c.duplicate_share < 0.1 for c in est.cameras)


def test_a_camera_half_duplicates_is_not_trusted():
    """A third of the people with two images a camera: neither clear case; the edge cannot tell."""
    feats, cams, _ = two_camera_edge([2] * 30 + [1] * 70)
    est = estimate_identities(feats, cams)
    assert not est.trusted and "camera 0" in est.reason


def test_without_a_second_camera_nothing_is_trusted():
    feats, cams, _ = two_camera_edge([3] * 20)
    one_camera = cams == 0
    est = estimate_identities(feats[one_camera], cams[one_camera])
    assert not est.trusted and "one camera" in est.reason
    assert not estimate_identities(feats, None).trusted


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="features"):
        estimate_identities(np.zeros((0, 4), dtype=np.float32), None)
    with pytest.raises(ValueError, match="camids"):
        estimate_identities(np.zeros((4, 4), dtype=np.float32), np.array([0, 1, 0]))
