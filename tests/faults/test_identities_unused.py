"""Unsupervised means it: the identities in training file names never steer training.

The same two rounds run with the training identities shuffled (and the file-name
parser switched off after loading) give bit-identical models and pseudo-labels;
only the diagnostics, which are computed from the identities for reporting, change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.privacy


def _learner(data_dir: Path, state_dir: Path, options: tuple[str, ...] = ()):
    from reid_core.config.settings import load_settings
    from reid_core.learners import learner_from_settings

    s = load_settings(["experiment=smoke", "data.synth_preset=null", f"data.root={data_dir.parent}",
                       f"data.clients=[{data_dir.name}]", "rounds=3", "train.first_round_epochs=2",
                       "train.epochs=1", "pc.merge_percent=0.2", *options])
    return learner_from_settings(s, data_dir.name, str(data_dir), str(state_dir))


def _two_rounds(edge):
    arrays, history = None, []
    for rnd in (1, 2):
        arrays, metrics = edge.train_round(arrays, rnd)
        history.append((edge.labels.copy(), metrics))
    return arrays, history


def _relabel(edge, pid_of):
    edge.dataset.train = [dataclasses.replace(s, pid=pid_of(s.pid)) for s in edge.dataset.train]


@pytest.mark.parametrize("options", [(), ("pc.camera_normalize=true", "train.local_bn=true"),
                                     ("pc.mode=personalized", "pc.estimator=per_camera"),
                                     pytest.param(("learner=cc", "cc.k1=8", "cc.k2=3"),
                                                  marks=pytest.mark.slow),  # ~80 s on 2 busy cores
                                     pytest.param(("learner=cc", "cc.k1=8", "cc.k2=3", "cc.camera_means=true",
                                                   "cc.camera_penalty=0.3", "cc.memory=camera", "cc.epoch_size=all"),
                                                  marks=pytest.mark.slow)],
                         ids=["paper", "camera-aware", "per-camera-estimate", "cc", "cc-camera-aware"])
def test_shuffled_training_identities_give_identical_models_and_labels(smoke_root: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch, options):
    from reid_core.data import market

    plain = _learner(smoke_root / "edge_a", tmp_path / "plain", options)
    shuffled = _learner(smoke_root / "edge_a", tmp_path / "shuffled", options)
    unknown = _learner(smoke_root / "edge_a", tmp_path / "unknown", options)
    pids = sorted({s.pid for s in plain.dataset.train})
    perm = dict(zip(pids, np.random.default_rng(1).permutation(pids).tolist()))
    # a different partition into people, not only other names: pairs the true one splits
    _relabel(shuffled, lambda p: perm[p] // 2 + 1)
    _relabel(unknown, lambda p: 0)

    def no_parsing(name):
        raise AssertionError(f"training parsed a file name: {name}")
    monkeypatch.setattr(market, "parse_market_name", no_parsing)

    model_a, hist_a = _two_rounds(plain)
    model_b, hist_b = _two_rounds(shuffled)
    model_c, hist_c = _two_rounds(unknown)
    for other in (model_b, model_c):
        assert list(model_a) == list(other)
        for key in model_a:
            assert np.array_equal(model_a[key], other[key]), key
    for (labels_a, m_a), (labels_b, m_b), (labels_c, m_c) in zip(hist_a, hist_b, hist_c):
        assert np.array_equal(labels_a, labels_b) and np.array_equal(labels_a, labels_c)
        assert m_a["train-loss"] == m_b["train-loss"] == m_c["train-loss"]
        assert not any(k.startswith("diag-") for k in m_c)  # names without identities: none reported
    merged_a, merged_b = hist_a[0][1], hist_b[0][1]
    if "learner=cc" in options:  # DBSCAN found clusters (not one blob, not all outliers)
        assert 1 < merged_a["clusters"] < len(hist_a[0][0]) and "diag-purity" in merged_a
    else:
        assert merged_a["merged"] > 0 and "diag-merge-precision" in merged_a
    # the diagnostics did read the (shuffled) identities: only they differ
    assert merged_a["diag-identities"] != merged_b["diag-identities"]


def test_the_identity_estimate_is_reported_every_round_beside_the_true_count(smoke_root: Path, tmp_path: Path):
    """Personalized Clustering's estimate (features and camera ids only) in every round's metrics, the last too."""
    edge = _learner(smoke_root / "edge_a", tmp_path / "pc", ("pc.mode=personalized", "pc.estimator=per_camera"))
    arrays = None
    for rnd in (1, 2, 3):
        arrays, metrics = edge.train_round(arrays, rnd)
        assert 1 <= metrics["identities-estimate"] <= metrics["num-examples"]
        assert metrics["identities-estimate-trusted"] in (0, 1)
        assert metrics["diag-identities"] == len({s.pid for s in edge.dataset.train})
    assert metrics["merged"] == 0  # the last round only estimates
