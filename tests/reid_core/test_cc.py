"""learner=cc pieces: sparse Jaccard == dense reference, DBSCAN, cluster memory, P x K sampler, config."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reid_core.config.settings import ConfigError, load_settings
from reid_core.learners.cc.clustering import auto_min_samples, cluster_features, dbscan_labels
from reid_core.learners.cc.jaccard import (camera_aware_search, expanded_sets, reciprocal_matrix,
                                            sparse_jaccard_distance, unit_rows)
from reid_core.learners.cc.jaccard_reference import dense_jaccard_distance
from reid_core.learners.cc.learner import outliers_as_singletons
from reid_core.learners.cc.memory import ClusterMemory
from reid_core.learners.cc.sampler import batches_per_epoch, identity_instances, pk_batches


def _groups(n: int, d: int, seed: int) -> np.ndarray:
    """Images of n // 5 people: a centre each plus noise (so the neighbourhoods overlap unevenly)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 5), d))
    return (centres[rng.integers(0, len(centres), n)] + 0.7 * rng.standard_normal((n, d))).astype(np.float32)


def _dense(dist: sp.csr_matrix) -> np.ndarray:
    coo = dist.tocoo()
    out = np.ones(dist.shape, np.float32)  # a missing pair is at distance 1
    out[coo.row, coo.col] = coo.data
    return out


@pytest.mark.parametrize("n, d, k1, k2, seed", [(40, 8, 10, 3, 0), (400, 16, 30, 6, 1), (200, 32, 20, 1, 2),
                                                (120, 4, 12, 12, 3)])
def test_sparse_jaccard_equals_the_dense_reference(n, d, k1, k2, seed, single_thread):
    x = _groups(n, d, seed)
    sparse = sparse_jaccard_distance(x, k1, k2)
    dense = dense_jaccard_distance(x, k1, k2)
    assert sparse.nnz == int((dense < 1).sum())  # stored exactly where the reference is below 1
    assert np.abs(_dense(sparse) - dense).max() < 2e-6
    assert 0 < sparse.nnz < n * n  # not vacuous: some pairs share nothing


@pytest.mark.parametrize("n, d, k1, k2, cameras, penalty, seed", [(60, 8, 10, 3, 2, 0.5, 6), (300, 16, 30, 6, 3, 0.3, 7),
                                                                 (150, 8, 20, 1, 4, 2.0, 8)])
def test_camera_aware_jaccard_equals_the_dense_reference(n, d, k1, k2, cameras, penalty, seed, single_thread):
    x = _groups(n, d, seed)
    camids = np.random.default_rng(seed).integers(0, cameras, n)
    sparse = sparse_jaccard_distance(x, k1, k2, camids=camids, camera_penalty=penalty)
    dense = dense_jaccard_distance(x, k1, k2, camids=camids, camera_penalty=penalty)
    assert sparse.nnz == int((dense < 1).sum())
    assert np.abs(_dense(sparse) - dense).max() < 2e-6
    assert np.abs(dense - dense_jaccard_distance(x, k1, k2)).max() > 0.1  # the penalty changes the distance


def test_camera_aware_search_ranks_by_the_penalised_distance(single_thread):
    x = unit_rows(_groups(80, 8, 9))
    camids = np.arange(80) % 2
    penalty = 0.4
    full = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) + penalty * (camids[:, None] == camids[None, :])
    np.fill_diagonal(full, 0.0)
    sq, rank = camera_aware_search(x, 12, camids, penalty)
    assert np.array_equal(rank, np.argsort(full, axis=1, kind="stable")[:, :12])
    assert np.allclose(sq, ((x[:, None, :] - x[rank]) ** 2).sum(-1), atol=1e-5)  # plain distances, penalised order
    plain = camera_aware_search(x, 12, camids, 0.0)[1]
    assert (camids[rank[:, 1:]] != camids[:, None]).mean() > (camids[plain[:, 1:]] != camids[:, None]).mean()
    with pytest.raises(ValueError, match="camids"):
        camera_aware_search(x, 12, camids[:10], penalty)
    with pytest.raises(ValueError, match="penalty"):
        camera_aware_search(x, 12, camids, -1.0)


def test_camera_options_need_camera_ids():
    with pytest.raises(ValueError, match="camids"):
        cluster_features(_groups(50, 8, 0), k1=10, k2=3, eps=0.6, min_samples=2, camera_means=True)


def test_max_distance_keeps_only_close_pairs(single_thread):
    x = _groups(100, 8, 4)
    full, near = sparse_jaccard_distance(x, 20, 6), sparse_jaccard_distance(x, 20, 6, max_distance=0.6)
    assert near.nnz == int((full.data <= 0.6).sum()) < full.nnz
    assert np.abs(_dense(near)[_dense(near) < 1] - _dense(full)[_dense(near) < 1]).max() == 0


def test_reciprocal_and_expanded_sets_on_a_hand_made_rank():
    # 0-1-2 are mutual; 3 lists 0 but 0 does not list 3; 4 and 5 only list each other
    rank = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 0, 1], [4, 5, 3], [5, 4, 3]])
    r = reciprocal_matrix(rank, 3).toarray()
    assert r[0].nonzero()[0].tolist() == [0, 1, 2] and r[3].nonzero()[0].tolist() == [3]
    assert r[4].nonzero()[0].tolist() == [4, 5]
    assert np.array_equal(r, r.T)
    # half = round(3/2) + 1 = 3 columns here: the expansion adds nothing new
    assert np.array_equal(expanded_sets(rank, 3).toarray(), r)


def test_dbscan_on_a_hand_made_sparse_distance():
    # 0-1-2 a chain within eps, 3 alone, 4-5 a pair; a stored 0 (4, 5 identical) is a neighbour
    rows, cols, vals = [0, 1, 1, 2, 4, 5, 0], [1, 0, 2, 1, 5, 4, 3], [0.2, 0.2, 0.3, 0.3, 0.0, 0.0, 0.9]
    dist = sp.csr_matrix((vals, (rows, cols)), shape=(6, 6))
    assert dbscan_labels(dist, eps=0.5, min_samples=2).tolist() == [0, 0, 0, -1, 1, 1]
    assert dbscan_labels(dist, eps=0.5, min_samples=3).tolist() == [0, 0, 0, -1, -1, -1]  # 1 is core
    with pytest.raises(ValueError, match="eps"):
        dbscan_labels(dist, eps=1.0, min_samples=2)


def test_sparse_clustering_gives_the_dense_reference_labels(single_thread):
    from sklearn.cluster import DBSCAN

    x = _groups(300, 16, 5)
    ours = cluster_features(x, k1=30, k2=6, eps=0.6, min_samples=4)
    ref = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(dense_jaccard_distance(x, 30, 6))
    assert np.array_equal(ours.labels, ref) and ours.num_clusters > 3


def test_min_samples_by_edge_size():
    assert auto_min_samples(632) == 2 and auto_min_samples(12936) == 4  # VIPeR, Market
    assert auto_min_samples(4104, num_identities=1467) == 2 and auto_min_samples(500, num_identities=50) == 4


def test_memory_centroids_update_and_loss():
    feats = np.array([[1, 0], [1, 0.2], [0, 1], [5, 5]], np.float32)
    mem = ClusterMemory.from_features(feats, np.array([0, 0, 1, -1]), temperature=0.5, momentum=0.2)
    assert mem.num_clusters == 2
    unit = feats[:2] / np.linalg.norm(feats[:2], axis=1, keepdims=True)
    want0 = unit.sum(0) / np.linalg.norm(unit.sum(0))  # mean of the unit rows, normalised; 3 is an outlier
    assert np.allclose(mem.centroids[0].numpy(), want0, atol=1e-6)
    assert np.allclose(mem.centroids[1].numpy(), [0, 1])
    x = torch.tensor([[0.0, 2.0]], requires_grad=True)  # normalised to (0, 1)
    loss, logits = mem.loss(x, torch.tensor([1]))
    assert torch.allclose(logits, torch.tensor([[float(want0[1]) / 0.5, 2.0]]), atol=1e-4)
    assert loss.item() == pytest.approx(-np.log(np.exp(2.0) / (np.exp(2.0) + np.exp(want0[1] / 0.5))), rel=1e-4)
    loss.backward()
    assert x.grad is not None and mem.centroids.grad is None
    # two samples of cluster 1 move it twice, in order: c <- norm(0.2 c + 0.8 f)
    mem.update(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([1, 1]))
    c = np.array([0.0, 1.0])
    for _ in range(2):
        c = 0.2 * c + 0.8 * np.array([1.0, 0.0])
        c /= np.linalg.norm(c)
    assert np.allclose(mem.centroids[1].numpy(), c, atol=1e-6)
    assert ClusterMemory.precision(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == (1, 2)
    with pytest.raises(ValueError, match="outlier"):
        ClusterMemory.from_features(feats, np.array([-1, -1, -1, -1]))


def test_identity_instances_prefer_other_cameras():
    rng = np.random.default_rng(0)
    members, cams = np.array([10, 11, 12, 13]), np.array([0, 0, 0, 1])
    for _ in range(20):
        picked = identity_instances(members, cams, 4, rng)
        anchor_cam = cams[members.tolist().index(picked[0])]
        rest = [cams[members.tolist().index(i)] for i in picked[1:]]
        assert len(picked) == 4 and all(c != anchor_cam for c in rest) or anchor_cam == 1
    one_cam = identity_instances(np.array([5, 6]), np.array([2, 2]), 4, rng)
    assert sorted(set(one_cam.tolist())) == [5, 6] and one_cam[1:].tolist() == [6 if one_cam[0] == 5 else 5] * 3


def test_pk_batches_hold_p_identities_of_k_and_skip_outliers():
    labels = np.array([0, 0, 1, 1, 1, -1, 2, 2, 3, 3, -1])
    camids = np.array([0, 1, 0, 1, 2, 0, 0, 1, 0, 0, 1])
    batches = pk_batches(labels, camids, p=2, k=3, num_batches=6, rng=np.random.default_rng(0))
    assert len(batches) == 6
    for b in batches:
        assert len(b) == 6 and (labels[b] >= 0).all()
        ids = labels[b].reshape(2, 3)
        assert (ids == ids[:, :1]).all() and ids[0, 0] != ids[1, 0]  # P distinct identities of K each
    seen = np.concatenate([labels[b] for b in batches[:2]])
    assert set(seen.tolist()) == {0, 1, 2, 3}  # the first pass visits every identity once
    assert pk_batches(np.full(4, -1), np.zeros(4), 2, 2, 3, np.random.default_rng(0)) == []
    assert batches_per_epoch(100, 16, 0) == 7 and batches_per_epoch(100, 16, 40) == 40


def test_outliers_become_singletons_for_the_diagnostics():
    assert outliers_as_singletons(np.array([0, -1, 1, -1])).tolist() == [0, 2, 1, 3]
    assert outliers_as_singletons(np.array([-1, -1])).tolist() == [0, 1]


def test_cc_config_and_bad_values_name_the_key():
    s = load_settings(["experiment=smoke", "learner=cc", "cc.eps=0.5", "cc.min_samples=3"])
    assert s.learner == "cc" and s.cc.eps == 0.5 and s.cc.min_samples == 3 and s.cc.k1 == 8  # smoke sets k1=8
    for override, key in [("cc.eps=1.0", "cc.eps"), ("cc.cluster_every=week", "cc.cluster_every"),
                          ("cc.k2=40", "cc.k2"), ("cc.instances=64", "cc.instances"), ("cc.nope=1", "cc.nope"),
                          ("cc.camera_penalty=5", "cc.camera_penalty"), ("cc.camera_means=2", "cc.camera_means"),
                          ("cc.epoch_size=half", "cc.epoch_size"),
                          ("learner=spcl", "learner")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(["experiment=smoke", override])
