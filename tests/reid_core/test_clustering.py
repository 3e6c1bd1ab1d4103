"""Tests for reid_core.learners.buc.merge: BUC merge, exact k-NN version vs dense reference."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from reid_core.runtime import knn
from reid_core.learners.buc.merge import (
    _exact_sq_distances,
    _max_sq_norm,
    _quantization_shift,
    buc_merge,
)
from reid_core.learners.buc.merge_reference import buc_merge_dense

IMPLEMENTATIONS = [buc_merge, buc_merge_dense]


pytestmark = pytest.mark.usefixtures("single_thread")  # fixture in conftest.py


def line(*xs: float) -> np.ndarray:
    """Points on a line (1-D features), distances worked by hand."""
    return np.array(xs, dtype=np.float32)[:, None]


def clustered(n: int, dim: int, seed: int, duplicates: bool = False) -> np.ndarray:
    """L2-normalised features around n // 4 random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 4), dim))
    feats = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dim))
    if duplicates:  # exact ties: copies of a few rows
        feats[rng.integers(0, n, n // 3)] = feats[0]
        feats[rng.integers(0, n, n // 5)] = feats[-1]
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return feats.astype(np.float32)


def pre_clustered(n: int, seed: int) -> np.ndarray:
    """Random labels using every value 0..C-1."""
    rng = np.random.default_rng(seed + 100)
    return np.unique(rng.integers(0, max(2, n // 3), n), return_inverse=True)[1]


# ---- hand-worked cases ---------------------------------------------------------

@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("num_merge", "expected"),
    [(0, [0, 1, 2, 3]), (1, [0, 0, 1, 2]), (2, [0, 0, 0, 1]), (3, [0, 0, 0, 0])],
)
def test_line_singletons(merge, num_merge, expected):
    """Points 0, 1, 3, 6: distances^2 (0,1)=1, (1,2)=4, (0,2)=(2,3)=9, ... merge in that order."""
    # Prepare / Execute
    out = merge(line(0, 1, 3, 6), np.arange(4), num_merge, 0.0)
    # Assert
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("lam", "expected"), [(0.0, [0, 0, 0, 1]), (3.0, [0, 0, 0, 1]), (10.0, [0, 0, 1, 1])]
)
def test_size_penalty_changes_the_pair(merge, lam, expected):
    """Cluster {0,1} + singletons at 3, 6: (1,2) costs 4 + 3 lam, (2,3) costs 9 + 2 lam."""
    out = merge(line(0, 1, 3, 6), np.array([0, 0, 1, 2]), 1, lam)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
@pytest.mark.parametrize("xs", [(0, 2, 4), (4, 2, 0)])
def test_equal_costs_break_by_pair_index(merge, xs):
    """(0,1) and (1,2) both cost 4: the lexicographically smaller pair (0,1) goes first."""
    np.testing.assert_array_equal(merge(line(*xs), np.arange(3), 1, 0.0), [0, 0, 1])


@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
def test_smaller_label_survives_and_labels_are_renumbered(merge):
    """Labels 0 and 2 join (distance 0.25); survivors {0, 1, 3} become 0, 1, 2."""
    out = merge(line(0, 10, 0.5, 30), np.array([0, 1, 2, 3]), 1, 0.0)
    np.testing.assert_array_equal(out, [0, 1, 0, 2])


@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
def test_already_joined_pair_does_not_count(merge):
    """0, 1, 1.5, 10, 10.2: (0,2) is skipped after (1,2) and (0,1); the 4th merge is (2,3)."""
    out = merge(line(0, 1, 1.5, 10, 10.2), np.arange(5), 4, 0.0)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0])
    out = merge(line(0, 1, 1.5, 10, 10.2), np.arange(5), 3, 0.0)
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1])


@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
def test_same_cluster_pairs_are_excluded(merge):
    """Images 0 and 1 share a cluster, so their distance 0 is not a merge."""
    out = merge(line(0, 0, 5, 7), np.array([1, 1, 0, 2]), 1, 0.0)
    np.testing.assert_array_equal(out, [1, 1, 0, 0])


# ---- errors --------------------------------------------------------------------

@pytest.mark.parametrize("merge", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("labels", "num_merge", "lam", "message"),
    [
        ([0, 1, 2, 3], 4, 0.0, "num_merge"),
        ([0, 1, 2, 3], -1, 0.0, "num_merge"),
        ([0, 0, 2, 2], 1, 0.0, "every value"),
        ([0, 1, 2], 1, 0.0, "shape"),
        ([0, 1, 2, -1], 1, 0.0, ">= 0"),
        ([0.0, 1.0, 2.0, 3.0], 1, 0.0, "integers"),
        ([0, 1, 2, 3], 1, -0.1, "lam"),
    ],
)
def test_bad_input_is_rejected(merge, labels, num_merge, lam, message):
    with pytest.raises(ValueError, match=message):
        merge(line(0, 1, 2, 3), np.array(labels), num_merge, lam)


def test_nan_features_are_rejected():
    feats = line(0, 1, 2)
    feats[1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        buc_merge(feats, np.arange(3), 1, 0.0)


def test_zero_merges_returns_labels_unchanged():
    labels = np.array([2, 0, 1, 0])
    np.testing.assert_array_equal(buc_merge(line(0, 1, 2, 3), labels, 0, 0.003), labels)


# ---- exact k-NN version against the dense reference ------------------------------

@pytest.mark.parametrize("n", [5, 12, 40, 150, 400])
@pytest.mark.parametrize("lam", [0.0, 0.003, 0.05])
@pytest.mark.parametrize("start", ["singletons", "pre-clustered"])
def test_matches_dense_reference(n, lam, start):
    """Every num_merge from 0 to C-1 (sampled), small search depth to force refinements."""
    feats = clustered(n, 16, seed=n, duplicates=(n % 2 == 0))
    labels = np.arange(n) if start == "singletons" else pre_clustered(n, seed=n)
    num_clusters = labels.max() + 1
    for num_merge in sorted({0, 1, num_clusters // 3, num_clusters // 2, num_clusters - 2, num_clusters - 1}):
        if not 0 <= num_merge <= num_clusters - 1:
            continue
        fast = buc_merge(feats, labels, num_merge, lam, base_k=3, backend="torch")
        dense = buc_merge_dense(feats, labels, num_merge, lam)
        np.testing.assert_array_equal(fast, dense, err_msg=f"num_merge={num_merge}")
        assert fast.max() + 1 == num_clusters - num_merge


@pytest.mark.parametrize("seed", range(6))
def test_matches_dense_with_faiss_and_ties(seed):
    """Default backend, many duplicated rows (exact ties at distance 0 and beyond)."""
    rng = np.random.default_rng(seed)
    feats = clustered(120, 32, seed=seed, duplicates=True)
    labels = pre_clustered(120, seed) if seed % 2 else np.arange(120)
    num_merge = int(rng.integers(1, labels.max() + 1))
    stats: dict = {}
    fast = buc_merge(feats, labels, num_merge, 0.003, base_k=int(rng.integers(1, 6)), stats=stats)
    np.testing.assert_array_equal(fast, buc_merge_dense(feats, labels, num_merge, 0.003))
    assert stats["searches"] >= 1


def test_shallow_search_is_refined_until_exact():
    """base_k=1 cannot hold the answer: deeper searches must happen, result still exact."""
    feats = clustered(200, 8, seed=3)
    stats: dict = {}
    fast = buc_merge(feats, np.arange(200), 150, 0.003, base_k=1, backend="torch", stats=stats)
    assert stats["searches"] > 1 and stats["refined_queries"] > 0
    np.testing.assert_array_equal(fast, buc_merge_dense(feats, np.arange(200), 150, 0.003))


def test_repeated_rounds_match_dense():
    """Several merge rounds in a row (labels from the previous merge), as in training."""
    feats = clustered(300, 16, seed=7)
    fast = dense = np.arange(300)
    for _ in range(5):
        fast = buc_merge(feats, fast, 30, 0.003, backend="torch")
        dense = buc_merge_dense(feats, dense, 30, 0.003)
        np.testing.assert_array_equal(fast, dense)


def test_canonical_distance_is_the_euclidean_distance():
    """The fixed-point distances used for ordering are within 1e-6 of float64 ones."""
    feats = clustered(50, 2048, seed=1)
    a, b = np.triu_indices(50, 1)
    shift = _quantization_shift(_max_sq_norm(feats), 2048)
    canonical = _exact_sq_distances(feats, a, b, shift)
    true = ((feats[a].astype(np.float64) - feats[b].astype(np.float64)) ** 2).sum(axis=1)
    assert np.abs(canonical - true).max() < 1e-6
    np.testing.assert_array_equal(canonical, _exact_sq_distances(feats, b, a, shift))  # symmetric, bitwise


def _numpy_peak_bytes(num_points: int) -> int:
    feats = clustered(num_points, 8, seed=5)
    tracemalloc.start()
    buc_merge(feats, np.arange(num_points), num_points // 20, 0.003)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_grows_linearly_not_quadratically():
    """4x the images: numpy peak grows ~4x (O(N k)), and stays far below N x N bytes."""
    small, large = _numpy_peak_bytes(2000), _numpy_peak_bytes(8000)
    assert large < 8000 * 8000, f"peak {large / 2**20:.1f} MiB"
    assert large < 8 * small, f"{small / 2**20:.1f} MiB -> {large / 2**20:.1f} MiB"
