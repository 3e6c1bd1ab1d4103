"""Camera-aware pieces on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from reid_core.features import remove_camera_means
from reid_core.learners.camera import with_local_bn_statistics


def test_camera_means_removed_then_rows_normalised():
    # camera 0 shares +x, camera 1 shares +y: after removal the person-specific part is left
    f = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, -1.0], [0.0, 1.0, 1.0], [0.0, 1.0, -1.0]], dtype=np.float32)
    out = remove_camera_means(f, np.array([0, 0, 1, 1]))
    assert np.allclose(out, [[0, 0, 1], [0, 0, -1], [0, 0, 1], [0, 0, -1]])
    assert out.dtype == np.float32
    # nearest other image of each row is now the one from the other camera with the same sign
    assert int(np.argmax(out[1:] @ out[0])) + 1 == 2
    with pytest.raises(ValueError, match="camids"):
        remove_camera_means(f, np.array([0, 1]))


def test_local_bn_statistics_replace_only_the_running_buffers():
    received = {"bn.weight": np.ones(2), "bn.running_mean": np.zeros(2), "bn.running_var": np.ones(2),
                "bn.num_batches_tracked": np.array(5), "fc.weight": np.ones((2, 2))}
    local = {"bn.weight": np.full(2, 9.0), "bn.running_mean": np.full(2, 3.0), "bn.running_var": np.full(2, 4.0),
             "bn.num_batches_tracked": np.array(7), "fc.weight": np.zeros((2, 2))}
    out = with_local_bn_statistics(received, local)
    assert out["bn.weight"].tolist() == [1, 1] and out["fc.weight"].sum() == 4  # weights from the federation
    assert out["bn.running_mean"].tolist() == [3, 3] and out["bn.running_var"].tolist() == [4, 4]
    assert int(out["bn.num_batches_tracked"]) == 7
    assert with_local_bn_statistics(received, None) == received


def test_cross_camera_partners_hand_worked():
    from reid_core.learners.camera import cross_camera_partners
    # after camera-mean removal rows 0/2 share +z and rows 1/3 share -z; row 4 (camera 1) is closest to 0's
    # other-camera side too, so 0's partner is 2 (mutual) and 4's partner 0 is not mutual
    f = np.array([[1, 0, 1], [1, 0, -1], [0, 1, 1], [0, 1, -1], [0, 1, 0.9]], dtype=np.float32)
    cams = np.array([0, 0, 1, 1, 1])
    plain = cross_camera_partners(f, cams)
    assert plain[:4].tolist() == [2, 3, 0, 1] and plain[4] == 0
    assert all(cams[i] != cams[j] for i, j in enumerate(plain))
    mutual = cross_camera_partners(f, cams, mutual=True)
    assert mutual.tolist() == [2, 3, 0, 1, -1]
    assert cross_camera_partners(f, np.zeros(5, dtype=int)).tolist() == [-1] * 5  # one camera: no partner


def test_cross_camera_partners_match_dense_reference():
    from reid_core.learners.camera import cross_camera_partners
    rng = np.random.default_rng(0)
    f = rng.normal(size=(1500, 8)).astype(np.float32)  # > one 1024-row block
    cams = rng.integers(0, 3, size=1500)
    g = remove_camera_means(f, cams)
    sims = g @ g.T
    sims[cams[:, None] == cams[None, :]] = -np.inf
    assert np.array_equal(cross_camera_partners(f, cams), np.argmax(sims, axis=1))
