"""learner=cc camera-aware pieces: CAP-style proxies (cc.memory=camera) on hand-made cases; camera-aware clustering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reid_core.config.settings import ConfigError, load_settings
from reid_core.learners.cc.camera_memory import CameraProxyMemory
from reid_core.learners.cc.clustering import cluster_features
from reid_core.learners.cc.trainer import build_memory
from reid_core.learners.cc.memory import ClusterMemory

# cluster 0 seen by cameras 0 and 1, cluster 1 by camera 0 only; image 4 an outlier
FEATS = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [5, 5, 5]], np.float32)
LABELS = np.array([0, 0, 0, 1, -1])
CAMS = np.array([0, 0, 1, 0, 1])


def _memory(**kwargs) -> CameraProxyMemory:
    return CameraProxyMemory.from_features(FEATS, LABELS, CAMS, temperature=1.0, momentum=0.5, **kwargs)


def test_one_proxy_per_cluster_and_camera_outliers_left_out():
    mem = _memory()
    assert mem.num_proxies == 3
    assert mem.proxy_cluster.tolist() == [0, 0, 1] and mem.proxy_camera.tolist() == [0, 1, 0]
    assert torch.allclose(mem.proxies, torch.eye(3))  # (0, cam 0) = x, (0, cam 1) = y, (1, cam 0) = z
    assert mem.proxy_ids(torch.tensor([1, 0]), torch.tensor([0, 1])).tolist() == [2, 1]
    with pytest.raises(ValueError, match="no proxy"):
        mem.proxy_ids(torch.tensor([1]), torch.tensor([1]))  # cluster 1 was never seen by camera 1


def test_loss_intra_plus_weighted_inter_worked_by_hand():
    mem = _memory(hard_negatives=1, inter_weight=0.5)
    f = torch.tensor([[1.0, 0.0, 0.0]])  # cluster 0, camera 0: logits (1, 0, 0) over the three proxies
    loss, logits = mem.loss(f, torch.tensor([0]), torch.tensor([0]))
    assert logits.tolist() == [[1.0, 0.0, 0.0]]
    intra = -math.log(math.e / (math.e + 1))  # camera 0's proxies: own (1) vs cluster 1's (0)
    denom = math.e + 1 + 1  # positives (1, 0) + the one hard negative (0)
    inter = -0.5 * (math.log(math.e / denom) + math.log(1 / denom))  # mean over the two positives
    assert loss.item() == pytest.approx(intra + 0.5 * inter, abs=1e-6)


def test_update_moves_only_the_images_own_proxy_and_precision_reads_clusters():
    mem = _memory()
    before = mem.proxies.clone()
    mem.update(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([0]), torch.tensor([1]))
    expected = torch.nn.functional.normalize(0.5 * before[1] + 0.5 * torch.tensor([0.0, 0.0, 1.0]), dim=0)
    assert torch.allclose(mem.proxies[1], expected)
    assert torch.equal(mem.proxies[[0, 2]], before[[0, 2]])
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.9, 0.0, 0.1]])  # nearest proxies 1 (cluster 0), 0 (cluster 0)
    assert mem.precision(logits, torch.tensor([0, 1])) == (1, 2)


def test_camera_memory_needs_cameras_and_a_cluster():
    mem = _memory()
    with pytest.raises(ValueError, match="camera id"):
        mem.loss(torch.ones(1, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="outlier"):
        CameraProxyMemory.from_features(FEATS, np.full(5, -1), CAMS)
    with pytest.raises(ValueError, match="labels"):
        CameraProxyMemory.from_features(FEATS, LABELS[:3], CAMS)


def test_build_memory_follows_the_config():
    cc = load_settings(["experiment=smoke", "cc.memory=camera", "cc.hard_negatives=7"]).cc
    mem = build_memory(cc, FEATS, LABELS, CAMS)
    assert isinstance(mem, CameraProxyMemory) and mem.hard_negatives == 7
    assert isinstance(build_memory(load_settings(["experiment=smoke"]).cc, FEATS, LABELS, CAMS), ClusterMemory)
    for override, key in [("cc.memory=spcl", "cc.memory"), ("cc.hard_negatives=0", "cc.hard_negatives"),
                          ("cc.inter_camera_weight=-1", "cc.inter_camera_weight")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(["experiment=smoke", override])


def test_camera_means_and_penalty_join_the_cameras_of_one_person(single_thread):
    # 20 people x 2 cameras; each camera adds its own strong offset: plain clustering groups by camera
    rng = np.random.default_rng(0)
    people = rng.standard_normal((20, 16))
    offsets = 3.0 * rng.standard_normal((2, 16))
    camids = np.repeat([0, 1], 20)
    feats = np.concatenate([people + offsets[0], people + offsets[1]]) + 0.05 * rng.standard_normal((40, 16))
    plain = cluster_features(feats, k1=6, k2=2, eps=0.6, min_samples=2)
    aware = cluster_features(feats, k1=6, k2=2, eps=0.6, min_samples=2, camids=camids, camera_means=True,
                             camera_penalty=0.3)

    def joined(labels: np.ndarray) -> int:  # people whose two images share a cluster
        return int(((labels[:20] == labels[20:]) & (labels[:20] >= 0)).sum())

    assert joined(aware.labels) > joined(plain.labels)
    assert joined(aware.labels) >= 15


def test_camera_options_are_off_on_clients_without_real_cameras():
    s = load_settings(["experiment=smoke", "cc.memory=camera", "cc.camera_means=true", "cc.camera_penalty=0.3",
                       "data.pseudo_cameras=[edge_b]"])
    on, off = s.cc_for("edge_a"), s.cc_for("edge_b")
    assert (on.memory, on.camera_means, on.camera_penalty) == ("camera", True, 0.3)
    assert (off.memory, off.camera_means, off.camera_penalty) == ("cluster", False, 0.0) and off.k1 == on.k1
    assert load_settings(["experiment=real_cpu"], check_data=False).pseudo_cameras == ("ilids",)
    with pytest.raises(ConfigError, match=r"data\.pseudo_cameras"):
        load_settings(["experiment=smoke", "data.pseudo_cameras=[1]"])


CC_MEASURED = ["cc.k1=10", "cc.camera_means=true", "cc.camera_penalty=0.3", "cc.memory=camera", "cc.epoch_size=all"]


@pytest.mark.parametrize("learner", ["buc", "cc"])
def test_real_cpu_cc_is_real_cpu_with_the_measured_cc_options(learner):
    """experiment=real_cpu_cc = experiment=real_cpu + the documented cc overrides, nothing else:
    its BUC rows are real_cpu's, so both learners share one schedule in one ablation."""
    import dataclasses
    with_file = load_settings(["experiment=real_cpu_cc", f"learner={learner}"], check_data=False)
    by_hand = load_settings(["experiment=real_cpu", f"learner={learner}", *CC_MEASURED], check_data=False)
    differ = {f.name for f in dataclasses.fields(with_file)
              if getattr(with_file, f.name) != getattr(by_hand, f.name)}
    assert differ == {"experiment", "run_dir", "overrides"}
    assert with_file.cc.memory == "camera" and with_file.cc_for("ilids").memory == "cluster"
