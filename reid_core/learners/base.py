"""What every edge learner shares: its data, its state on the edge's disk, evaluation.

A learner is one client's local unsupervised learning. The ClientApp and standalone
training talk to it through this small interface only:

- ``train_round(arrays, server_round, total_rounds, start_from) -> (arrays, metrics)``: one round,
  the template every learner shares (start the round once, the learner's local step,
  diagnostics, save, metrics); a learner supplies only ``_local_step``;
- ``evaluate(arrays, start_from) -> metrics``: rank-1/5/10 and mAP on the edge's query/gallery;
- ``local_model()``: the model this edge trained last (edge-side Personalized Update);
- ``round``, ``num_clusters``, ``name``.

``start_from(local_model) -> arrays``, when given, makes the model to start from out of the
edge's own last local model: Personalized Update at the edge (``pu.where=edge``); the caller
(the ClientApp, the in-process driver) brings it, so the learners know nothing of the cloud.

State (pseudo-labels plus whatever a learner adds, and the last local model) stays in
``state_dir``, so a restarted node resumes its clustering. Only model arrays and scalar
metrics ever leave.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from reid_core.config.schema import CCConfig, ClusterConfig, EarlyStopConfig, ImageConfig, ModelConfig, TrainConfig
from reid_core.data import read_reid_root, scan_images, unlabeled_paths
from reid_core.eval.ranking import evaluate_model
from reid_core.features import extract_features
from reid_core.learners.camera import with_local_bn_statistics
from reid_core.learners.diagnostics import known_identities, round_diagnostics
from reid_core.learners.epochs import EpochsResult
from reid_core.models import ReIDNet, build_model
from reid_core.runtime.arrays import load_arrays, model_arrays
from reid_core.runtime.device import resolve_device

log = logging.getLogger(__name__)

# the edge's last local model (None before its first round) -> the model to start from
StartFrom = Callable[[Mapping[str, np.ndarray] | None], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class LearnerConfig:
    """The small configs one edge needs."""

    model: ModelConfig
    image: ImageConfig
    train: TrainConfig
    early_stop: EarlyStopConfig
    cluster: ClusterConfig
    total_rounds: int
    cc: CCConfig = CCConfig()  # learner=cc only


@dataclass
class LocalStep:
    """What a learner's local step did; the shared end of the round reports it."""

    trained: EpochsResult
    clusters_trained: int         # pseudo-identities the epochs trained on
    diagnostic_labels: np.ndarray  # the clustering judged by the diagnostics (each outlier its own cluster)
    features: np.ndarray | None = None     # the features clustered, for the NN diagnostics
    merge_pairs: np.ndarray | None = None  # BUC: the pairs merged, for merge precision
    merged: int = 0
    seconds_cluster: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # the learner's own metrics


class NoUsableData(ValueError):
    """The edge has no readable training images."""


class EdgeLearner(ABC):
    """One client's pseudo-label learner; subclasses implement `train_round`."""

    KIND = ""  # the learner's config name (buc, cc): its saved state says which learner wrote it
    STATE_FILE = "learner_state.npz"
    LOCAL_MODEL_FILE = "local_model.npz"
    SCAN_CACHE_FILE = "image_scan.json"

    def __init__(self, name: str, data_dir: str, cfg: LearnerConfig, state_dir: str) -> None:
        self.name, self.cfg = name, cfg
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.model.device)
        self.dataset = read_reid_root(data_dir)  # Market-1501 layout, or FedReID's pytorch/ layout
        scan = scan_images(unlabeled_paths(self.dataset.train), cache_file=self.state_dir / self.SCAN_CACHE_FILE)
        self.paths = list(scan.good)
        self.skipped = dict(scan.bad)
        if self.skipped:
            log.warning("%s: skipped %d unusable training image(s), e.g. %s",
                        name, len(self.skipped), next(iter(self.skipped.items())))
        if not self.paths:
            # The message travels to the server in Flower's error reply: the folder stays in the local log.
            log.error("%s: no usable training images in %s", name, data_dir)
            raise NoUsableData(f"client '{name}': no usable training images "
                               f"({len(self.skipped)} unreadable); see the edge's log")
        self.data_key = hashlib.sha1("\n".join(self.paths).encode()).hexdigest()
        self._fresh_state()
        self._load_state()

    # ---- what a learner keeps between rounds (override and call super) -------------
    def _fresh_state(self) -> None:
        """Before round 1: every image its own cluster."""
        self.round = 0
        self.labels = np.arange(len(self.paths), dtype=np.int64)
        self.memory: np.ndarray | None = None  # the learner's memory of its pseudo-identities

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"labels": self.labels, "memory": self.memory if self.memory is not None else np.zeros(0)}

    def _state_meta(self) -> dict[str, Any]:
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.labels = arrays["labels"].astype(np.int64)
        self.memory = arrays["memory"] if arrays["memory"].size else None

    # ---- persistence ------------------------------------------------------------
    def _load_state(self) -> None:
        path = self.state_dir / self.STATE_FILE
        if not path.exists():
            return
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["data_key"] != self.data_key:
                log.warning("%s: training images changed since the saved state; clustering restarts", self.name)
                return
            if meta.get("learner", self.KIND) != self.KIND:  # the edge switched learner (learner_for, node_config)
                log.warning("%s: the saved state was written by learner '%s', this edge now runs '%s'; clustering restarts",
                            self.name, meta["learner"], self.KIND)
                return
            self.round = int(meta["round"])
            self._restore({k: z[k] for k in z.files if k != "meta"}, meta)
        log.info("%s: resumed clustering after round %d (%d clusters)", self.name, self.round, self.num_clusters)

    def save_state(self) -> None:
        """Atomic write of the learner's state (it never leaves the edge)."""
        meta = {"round": self.round, "data_key": self.data_key, "learner": self.KIND, **self._state_meta()}
        tmp = self.state_dir / (self.STATE_FILE + ".tmp.npz")
        np.savez(tmp, **self._state_arrays(), meta=np.array(json.dumps(meta)))
        _keep_previous(self.state_dir / self.STATE_FILE)
        os.replace(tmp, self.state_dir / self.STATE_FILE)

    def start_round(self, server_round: int) -> None:
        """Go back to the state before `server_round` when this edge has trained it already.

        That happens when the server restarted from its checkpoint after this edge finished
        the round (it is sent again), or when a new run starts on a kept state folder.
        Training it on top of its own result would merge the clusters twice.
        """
        if server_round > self.round:
            return
        files = [self.state_dir / name for name in (self.LOCAL_MODEL_FILE, self.STATE_FILE)]
        if server_round == 1:  # a new run: start the clustering over
            for path in files:
                path.unlink(missing_ok=True)
                _previous(path).unlink(missing_ok=True)
        elif _previous(files[1]).exists():
            for path in files:  # model first: a crash in between leaves the state to rewind again
                if _previous(path).exists():
                    os.replace(_previous(path), path)
        else:
            log.warning("%s: round %d sent again but no earlier state is kept; continuing after round %d",
                        self.name, server_round, self.round)
            return
        done = self.round
        self._fresh_state()
        self._load_state()
        log.warning("%s: round %d sent again (this edge had done round %d); continuing after round %d",
                    self.name, server_round, done, self.round)

    def local_model(self) -> dict[str, np.ndarray] | None:
        """The model this edge trained last (for edge-side Personalized Update)."""
        path = self.state_dir / self.LOCAL_MODEL_FILE
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def _save_local_model(self, arrays: Mapping[str, np.ndarray]) -> None:
        tmp = self.state_dir / (self.LOCAL_MODEL_FILE + ".tmp.npz")
        np.savez(tmp, **arrays)
        _keep_previous(self.state_dir / self.LOCAL_MODEL_FILE)
        os.replace(tmp, self.state_dir / self.LOCAL_MODEL_FILE)

    @property
    def num_clusters(self) -> int:
        return int(self.labels.max()) + 1

    # ---- shared pieces of a round ---------------------------------------------------
    def build(self, arrays: Mapping[str, np.ndarray] | None) -> ReIDNet:
        """A model holding `arrays` (or freshly initialised when None)."""
        torch.manual_seed(self.cfg.train.seed)
        model = build_model(self.cfg.model)
        if arrays is not None:
            if self.cfg.train.local_bn:
                arrays = with_local_bn_statistics(arrays, self.local_model())
            load_arrays(model, arrays)
        return model.to(self.device)

    def _features(self, model: ReIDNet, which: str) -> np.ndarray:
        return extract_features(model, self.paths, self.cfg.image.height, self.cfg.image.width,
                                self.cfg.image.eval_batch_size, self.device, which=which,
                                num_workers=self.cfg.image.num_workers, amp=self.cfg.train.amp,
                                cache_dir=self.state_dir if self.cfg.image.decode_cache else None)

    def _camids(self) -> np.ndarray:
        """Camera of each training image: an edge knows which camera took it (no identities)."""
        by_path = {s.path: s.camid for s in self.dataset.train}
        return np.array([by_path[p] for p in self.paths], dtype=np.int64)

    def _identities(self) -> np.ndarray | None:
        """Identities in the training file names, for the diagnostics only (never for training)."""
        by_path = {s.path: s.pid for s in self.dataset.train}
        return known_identities([by_path[p] for p in self.paths])

    @abstractmethod
    def _local_step(self, model: ReIDNet, server_round: int, total_rounds: int) -> LocalStep:
        """Train `model` on this edge's images and update the pseudo-labels (and the learner's state)."""

    def train_round(self, arrays: Mapping[str, np.ndarray] | None, server_round: int,
                    total_rounds: int | None = None,
                    start_from: StartFrom | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """One federated round: train on the pseudo-labels and re-cluster; return model + scalar metrics."""
        self.start_round(server_round)  # before edge PU reads the local model: a resent round rewinds it
        if start_from is not None:
            arrays = start_from(self.local_model())
        t0 = time.time()
        model = self.build(arrays)
        step = self._local_step(model, server_round, total_rounds or self.cfg.total_rounds)
        t_compute = time.time() - t0
        camids = self._camids()
        t1 = time.time()  # after the labels are chosen: the identities cannot steer them
        diagnostics = round_diagnostics(step.diagnostic_labels, self._identities(), merge_pairs=step.merge_pairs,
                                        features=step.features, camids=camids)
        t_diag = time.time() - t1
        self.round = server_round
        out = model_arrays(model)
        self._save_local_model(out)
        self.save_state()
        trained = step.trained
        metrics = {
            "num-examples": len(self.paths),
            "train-loss": float(trained.loss),
            "precision": float(trained.precision),
            "epochs": int(trained.epochs),
            "stopped-early": int(trained.stopped_early),
            "clusters-trained": int(step.clusters_trained),
            "clusters": self.num_clusters,
            "merged": int(step.merged),
            **step.extra,
            "skipped-images": len(self.skipped),
            "time-train": round(t_compute - step.seconds_cluster, 3),
            "time-cluster": round(step.seconds_cluster, 3),
            "time-diagnostics": round(t_diag, 3),
            "time-compute": round(t_compute, 3),
            **diagnostics,
        }
        log.info("%s round %d: %s", self.name, server_round, metrics)
        return out, metrics

    def evaluate(self, arrays: Mapping[str, np.ndarray] | None, start_from: StartFrom | None = None) -> dict[str, Any]:
        """rank-1/5/10 and mAP (percent) of `arrays` (or of `start_from(local model)`) on this edge's query/gallery."""
        t0 = time.time()
        if start_from is not None:
            arrays = start_from(self.local_model())
        model = self.build(arrays)
        res = evaluate_model(model, self.dataset.query, self.dataset.gallery, self.cfg.image, self.device,
                             amp=self.cfg.train.amp)
        return {**{k: float(res[k]) for k in ("rank1", "rank5", "rank10", "mAP")},
                "num-examples": len(self.dataset.query), "time-eval": round(time.time() - t0, 3)}


def _previous(path: Path) -> Path:
    return path.with_name(path.stem + ".previous" + path.suffix)


def _keep_previous(path: Path) -> None:
    """Keep the last saved round beside the next one (see `EdgeLearner.start_round`)."""
    if not path.exists():
        return
    tmp = path.with_name(path.name + ".previous.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)  # no copy: the next os.replace gives `path` a new file
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, _previous(path))
