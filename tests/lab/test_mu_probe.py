"""lab.mu_probe: the cross-camera scores on hand-made features, and PU's mix."""

from __future__ import annotations

import numpy as np
import pytest

from lab.mu_probe import cross_camera_scores, mix


def test_two_people_seen_by_two_cameras_score_perfectly():
    # person 0 along x, person 1 along y; each seen once by camera 0 and once by camera 1
    f = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    s = cross_camera_scores(f, camids=np.array([0, 1, 0, 1]), pids=np.array([0, 0, 1, 1]), k=1)
    assert s["mutual"] == 1.0 and s["krec"] == 1.0 and s["xprec"] == 1.0
    d_cross = 2 - 2 * 0.99 / np.hypot(0.99, 0.1)          # every image to its other-camera twin
    d_within_x, d_within_tilted = 2.0, 2 - 2 * 0.198 / (0.99 ** 2 + 0.1 ** 2)  # [1,0]-[0,1]; the two tilted ones
    assert s["ratio"] == pytest.approx((d_cross / d_within_x + d_cross / d_within_tilted) / 2)  # median of 4


def test_mutual_neighbours_can_all_be_the_wrong_people():
    # camera 1 sees both people near one point, tilted the wrong way: every pair is mutual, none right
    f = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.72], [0.71, 0.69]])
    s = cross_camera_scores(f, camids=np.array([0, 0, 1, 1]), pids=np.array([0, 1, 0, 1]), k=1)
    assert s["mutual"] == 1.0 and s["krec"] == 1.0 and s["xprec"] == 0.0


def test_mix_interpolates_floats_and_keeps_the_edges_counters():
    local = {"w": np.array([1.0, 3.0], np.float32), "n": np.array(7, np.int64)}
    glob = {"w": np.array([3.0, 1.0], np.float32), "n": np.array(2, np.int64)}
    out = mix(local, glob, 0.25)
    assert out["w"].tolist() == [2.5, 1.5] and out["w"].dtype == np.float32 and int(out["n"]) == 7
