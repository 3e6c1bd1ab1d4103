"""Every edge's loss and memory precision after each local epoch of an in-process federation.

For choosing a Personalized Epoch rule: it shows whether a round's later epochs still lower
the loss. The federation runs in one process (`reid_core.federation.in_process`: the same core
and learners as the simulation); the epochs are read through `run_epochs`'s per-epoch
callback, so training is unchanged. BUC edges only.

With ``--retrieval`` each epoch also records what a stop rule would want to know: the edge's
local model's rank-1 and mAP on its own query/gallery (file-name identities: a diagnostic,
never read by training) and the share of each training image's 10 nearest neighbours (the
features Personalized Clustering merges on) that are the same as after the epoch before, a
label-free sign of whether the next merge would still change. The random-number state is put
back after each measurement, so the run trains as it would without them.

Run: ``python -m lab.epoch_probe --out runs/probe.json experiment=demo run_dir=runs/probe train.epochs=8 pe.rule=none``

``--replay runs/probe.json pe.min_delta=0.05`` reads such a file back and says where the loss rules
(`trend`, `plateau`) of the given settings would first stop each edge's round: exact for a round
that a run without PE trained up to that stop, an estimate for the rounds after a stop changed.
"""

from __future__ import annotations

import argparse
import json
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import reid_core.learners.buc.learner as buc_learner
import reid_core.learners.buc.trainer as buc_trainer
from reid_core.config.schema import EarlyStopConfig
from reid_core.config.settings import load_settings
from reid_core.eval.ranking import evaluate_model
from reid_core.features import remove_camera_means
from reid_core.federation.in_process import run_in_process
from reid_core.personalization.personalized_epoch import EarlyStopper
from reid_core.runtime.knn import knn_search

NEIGHBOURS = 10  # the neighbourhood whose turnover the retrieval probe records
REPLAYED_RULES = ("none", "trend", "plateau")  # rules on epoch losses alone (precision reads every batch)


@contextmanager
def same_random_state():
    """Measure without moving any random stream training draws from."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def neighbour_overlap(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean share of each row's neighbours (indices, (n, k)) found again in the same row of the other."""
    if previous.shape != current.shape or previous.ndim != 2 or previous.shape[1] == 0:
        raise ValueError(f"need two (n, k) neighbour tables of one shape, got {previous.shape} and {current.shape}")
    k = previous.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(previous.tolist(), current.tolist())]))


def _neighbours(learner, model) -> np.ndarray:
    feats = learner._features(model, learner.cfg.cluster.feature)
    if learner.cfg.cluster.camera_normalize:
        feats = remove_camera_means(feats, learner._camids())
    return knn_search(np.ascontiguousarray(feats, dtype=np.float32), min(NEIGHBOURS, len(feats) - 1),
                      backend="torch")[1]  # no faiss in this process: a later loader may fork workers


def probe(overrides: list[str], retrieval: bool = False) -> dict[str, list[tuple[float, ...]]]:
    """{"<client> r<round>": [(loss, precision[, neighbour overlap, rank-1, mAP]) per epoch]} of one in-process run."""
    seen: dict[str, list[tuple[float, ...]]] = {}
    run_epochs, local_step = buc_trainer.run_epochs, buc_learner.BUCLearner._local_step
    current: dict[str, object] = {}

    def stepping(self, *args, **kwargs):
        current["learner"] = self
        return local_step(self, *args, **kwargs)

    def recording(model, *args, **kwargs):
        desc, chained = kwargs.get("desc", "train"), kwargs.get("epoch_done")
        learner = current.get("learner")
        before = {}
        if retrieval:
            with same_random_state():
                before["neighbours"] = _neighbours(learner, model)

        def epoch_done(epoch: int, loss: float, precision: float) -> None:
            row: tuple[float, ...] = (round(loss, 4), round(precision, 4))
            if retrieval:
                with same_random_state():
                    neighbours = _neighbours(learner, model)
                    overlap = neighbour_overlap(before["neighbours"], neighbours)
                    before["neighbours"] = neighbours
                    res = evaluate_model(model, learner.dataset.query, learner.dataset.gallery, learner.cfg.image,
                                         learner.device)
                model.train()  # the evaluation left it in eval mode
                row += (round(overlap, 4), round(float(res["rank1"]), 2), round(float(res["mAP"]), 2))
            seen.setdefault(desc, []).append(row)
            if chained is not None:
                chained(epoch, loss, precision)

        return run_epochs(model, *args, **{**kwargs, "epoch_done": epoch_done})

    buc_trainer.run_epochs, buc_learner.BUCLearner._local_step = recording, stepping
    try:
        run_in_process(load_settings(overrides))
    finally:
        buc_trainer.run_epochs, buc_learner.BUCLearner._local_step = run_epochs, local_step
    return seen


def replay(seen: dict[str, list], config: EarlyStopConfig) -> dict[str, int]:
    """{"<client> r<round>": epochs that round would train} under `config`, from a probe's per-epoch losses.

    Each round's epochs go through the product's `EarlyStopper` (the round's recorded epochs as its
    maximum), one epoch loss at a time.
    """
    if config.rule not in REPLAYED_RULES:
        raise ValueError(f"pe.rule={config.rule!r} cannot be replayed from epoch losses; one of {REPLAYED_RULES}")
    epochs = {}
    for key, rows in seen.items():
        if not rows:
            raise ValueError(f"{key}: no epochs recorded")
        stopper = EarlyStopper(config, len(rows))
        for row in rows:
            stopper.update_batch(0, 1, float(row[0]))
            if stopper.end_epoch():
                break
        epochs[key] = stopper.epochs_run
    return epochs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="run the federation and write its epochs here")
    target.add_argument("--replay", type=Path, help="a file --out wrote: where the settings' PE would stop")
    parser.add_argument("--retrieval", action="store_true",
                        help="also record each epoch's neighbour overlap and the local model's rank-1 / mAP")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.replay:
        seen = json.loads(args.replay.read_text())
        epochs = replay(seen, load_settings(args.overrides, check_data=False).early_stop)
        recorded = sum(len(rows) for rows in seen.values())
        print(" ".join(f"{key}:{n}" for key, n in epochs.items()))
        print(f"{sum(epochs.values())} of {recorded} epochs, {1 - sum(epochs.values()) / recorded:.1%} saved")
        return 0
    seen = probe(args.overrides, retrieval=args.retrieval)
    args.out.write_text(json.dumps(seen, indent=1))
    for key, values in seen.items():
        print(key, " ".join("/".join(f"{v:.2f}" for v in row) for row in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
