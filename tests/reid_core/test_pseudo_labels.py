"""Learning diagnostics on hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reid_core.learners.diagnostics import (
    cluster_purity,
    known_identities,
    merge_precision,
    nn_precision,
    round_diagnostics,
)
from reid_core.learners.buc.merge import buc_merge

# four points on a line: 0 and 1 close, 2 and 3 close, the pairs far apart
LINE = np.array([[0.0], [0.1], [5.0], [5.3]], dtype=np.float32)


def test_purity_counts_each_clusters_majority_identity():
    assert cluster_purity(np.array([0, 0, 0, 1, 1]), np.array([1, 1, 2, 3, 3])) == pytest.approx(4 / 5)
    assert cluster_purity(np.arange(4), np.array([7, 7, 8, 8])) == 1.0  # singletons
    assert cluster_purity(np.zeros(4, dtype=int), np.array([1, 2, 3, 4])) == 0.25
    with pytest.raises(ValueError, match="1-D of one non-zero length"):
        cluster_purity(np.arange(3), np.arange(4))


def test_merge_precision_reads_the_linking_pairs():
    pids = np.array([1, 1, 2, 3])
    assert merge_precision(np.array([[0, 1], [2, 3]]), pids) == 0.5
    assert math.isnan(merge_precision(np.zeros((0, 2)), pids))


def test_nearest_neighbour_precision_overall_and_across_cameras():
    pids = np.array([1, 1, 2, 3])
    same_cam = nn_precision(LINE, pids, camids=np.array([0, 1, 0, 1]))
    assert same_cam == {"all": 0.5, "cross_camera": 0.5}
    # cameras split the close pairs: every cross-camera neighbour is someone else
    assert nn_precision(LINE, pids, camids=np.array([0, 0, 1, 1]))["cross_camera"] == 0.0
    assert math.isnan(nn_precision(LINE, pids, camids=np.zeros(4, dtype=int))["cross_camera"])


def test_buc_merge_reports_the_pair_behind_each_merge():
    stats: dict = {}
    labels = buc_merge(LINE, np.arange(4), 2, lam=0.0, stats=stats)
    assert labels.tolist() == [0, 0, 1, 1]
    assert stats["merge_pairs"].tolist() == [[0, 1], [2, 3]]


def test_round_diagnostics_only_with_identities():
    assert known_identities([3, 0, 5]) is None and known_identities([]) is None
    assert round_diagnostics(np.arange(4), None, features=LINE) == {}
    pids = known_identities([1, 1, 2, 3])
    out = round_diagnostics(np.array([0, 0, 1, 1]), pids, merge_pairs=np.array([[0, 1], [2, 3]]),
                            features=LINE, camids=np.array([0, 1, 0, 1]))
    assert out == {"diag-purity": 0.75, "diag-identities": 3, "diag-clusters-per-identity": pytest.approx(2 / 3),
                   "diag-merge-precision": 0.5, "diag-nn-precision": 0.5, "diag-nn-precision-cross-camera": 0.5}
    assert set(round_diagnostics(np.arange(4), pids)) == {"diag-purity", "diag-identities",
                                                         "diag-clusters-per-identity"}
