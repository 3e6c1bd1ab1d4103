"""learner=cc on the smoke data: a restarted edge resumes its clustering state; a resent round rewinds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

CC = ("learner=cc", "cc.k1=8", "cc.k2=3", "train.first_round_epochs=1", "train.epochs=1", "rounds=3")


@pytest.fixture(scope="module")
def edge_dir(tmp_path_factory) -> Path:
    from reid_core.data.federation import ensure_federation

    return Path(ensure_federation(tmp_path_factory.mktemp("smoke") / "data", seed=0, preset="smoke")) / "edge_a"


def _learner(data_dir: Path, state_dir: Path, *extra: str):
    from reid_core.config.settings import load_settings
    from reid_core.learners import learner_from_settings

    s = load_settings(["experiment=smoke", "data.synth_preset=null", f"data.root={data_dir.parent}",
                       f"data.clients=[{data_dir.name}]", *CC, *extra])
    return learner_from_settings(s, data_dir.name, str(data_dir), str(state_dir))


def test_restarted_edge_resumes_its_learner_and_a_resent_round_rewinds(edge_dir, tmp_path, single_thread):
    from reid_core.learners.cc.learner import CCLearner

    first = _learner(edge_dir, tmp_path / "a")
    assert isinstance(first, CCLearner) and first.round == 0 and (first.labels == -1).all()
    arrays, m1 = first.train_round(None, 1)
    assert first.num_clusters == m1["clusters"] > 1 and first.memory.shape == (first.num_clusters, 128)
    assert {"train-loss", "precision", "epochs", "clusters", "time-compute", "diag-purity"} <= set(m1)
    assert m1["outliers"] == int((first.labels < 0).sum()) and m1["min-samples"] == 2  # small edge
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    restarted = _learner(edge_dir, tmp_path / "b")  # a new process on the kept state folder
    assert restarted.round == 1
    assert np.array_equal(restarted.labels, first.labels) and np.array_equal(restarted.memory, first.memory)
    out_a, m2a = first.train_round(arrays, 2)
    out_b, m2b = restarted.train_round(arrays, 2)
    assert all(np.array_equal(out_a[k], out_b[k]) for k in out_a)
    assert np.array_equal(first.labels, restarted.labels) and m2a["train-loss"] == m2b["train-loss"]

    again, _ = restarted.train_round(arrays, 2)  # round 2 sent again: rewinds to after round 1
    assert restarted.round == 2 and all(np.array_equal(again[k], out_a[k]) for k in out_a)
    assert not any(np.array_equal(out_a[k], arrays[k]) for k in out_a if out_a[k].dtype.kind == "f")


def test_personalized_epoch_reads_the_cc_precision(edge_dir, tmp_path, single_thread):
    edge = _learner(edge_dir, tmp_path / "pe", "train.epochs=3", "pe.rule=precision", "pe.precision_threshold=0.01",
                     "pe.min_epochs=1")
    arrays, first = edge.train_round(None, 1)
    assert first["epochs"] == 1 and first["stopped-early"] == 0  # round 1 trains its fixed epochs
    _, later = edge.train_round(arrays, 2)
    assert later["precision"] > 0.01 and later["epochs"] == 1 and later["stopped-early"] == 1


def test_camera_aware_edge_trains_on_one_proxy_per_pseudo_identity_and_camera(edge_dir, tmp_path, single_thread):
    edge = _learner(edge_dir, tmp_path / "cam", "cc.memory=camera", "cc.camera_means=true", "cc.camera_penalty=0.3")
    arrays, metrics = edge.train_round(None, 1)
    cams, kept = edge._camids(), edge.labels >= 0
    proxies = len(np.unique(edge.labels[kept] * (cams.max() + 1) + cams[kept]))
    assert edge.memory.shape == (proxies, 128) and proxies > metrics["clusters-trained"] > 1  # some span 2 cameras
    assert np.isfinite(metrics["train-loss"]) and 0 < metrics["precision"] <= 1
    restarted = _learner(edge_dir, tmp_path / "cam", "cc.memory=camera", "cc.camera_means=true",
                         "cc.camera_penalty=0.3")
    assert restarted.round == 1 and np.array_equal(restarted.memory, edge.memory)


def test_epoch_size_all_trains_as_many_batches_as_a_pass_over_every_image(edge_dir, tmp_path, single_thread,
                                                                          monkeypatch):
    from reid_core.learners.cc import trainer

    seen = {}
    real = trainer.pk_batches

    def counting(labels, camids, p, k, num_batches, rng):
        seen.setdefault("calls", []).append((int((labels >= 0).sum()), len(labels), p * k, num_batches))
        return real(labels, camids, p, k, num_batches, rng)

    monkeypatch.setattr(trainer, "pk_batches", counting)
    _learner(edge_dir, tmp_path / "all", "cc.epoch_size=all", "cc.eps=0.4").train_round(None, 1)  # some outliers
    (clustered, total, batch, batches), = seen["calls"]
    assert clustered < total and batches == -(-total // batch)  # outliers count toward the pass


@pytest.mark.parametrize("kind", ["cc", "buc"])
def test_train_amp_reaches_the_autocast_path_of_both_learners(edge_dir, tmp_path, monkeypatch, single_thread, kind):
    """One epoch loop serves both trainers: `train.amp` is asked of the autocast helper for either learner."""
    import contextlib

    import reid_core.learners.epochs as epochs

    asked = []

    def spy(amp, device):
        asked.append((amp, device.type))
        return contextlib.nullcontext  # the CPU has no bf16 autocast here: record the request only

    monkeypatch.setattr(epochs, "amp_context", spy)
    edge = _learner(edge_dir, tmp_path / kind, f"learner={kind}", "train.amp=bf16")
    edge.train_round(None, 1)
    assert asked == [("bf16", "cpu")]
