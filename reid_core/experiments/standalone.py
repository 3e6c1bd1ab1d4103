"""Standalone training (the paper's "BUC standalone" row; cluster-contrast with learner=cc): one dataset, no federation."""

from __future__ import annotations

import logging
import os
import time

from reid_core.learners import learner_from_settings
from reid_core.experiments.report import markdown_table, per_round_table, write_run_outputs
from reid_core.config.settings import Settings

log = logging.getLogger(__name__)

LEARNER_NAMES = {"buc": "BUC", "cc": "cluster-contrast"}  # how the tables name each learner


def run_standalone(settings: Settings, client: str) -> dict:
    """Train the configured learner (BUC or cc) for `settings.rounds` stages, evaluating after each; write run outputs."""
    t0 = time.time()
    learner = learner_from_settings(settings, client, settings.client_dir(client),
                                    state_dir=os.path.join(settings.run_dir, "edge_state", client))
    arrays = learner.local_model() if learner.round > 0 else None
    history = [] if learner.round > 0 else [{"round": 0, "clients": {client: learner.evaluate(None)}}]
    for rnd in range(learner.round + 1, settings.rounds + 1):
        arrays, train_metrics = learner.train_round(arrays, rnd)
        eval_metrics = learner.evaluate(arrays)
        history.append({"round": rnd, "clients": {client: {**train_metrics, **eval_metrics}}})
        print(f"stage {rnd}/{settings.rounds}: rank-1 {eval_metrics['rank1']:.1f} mAP {eval_metrics['mAP']:.1f} "
              f"clusters {train_metrics['clusters']} epochs {train_metrics['epochs']}", flush=True)
    meta = {"experiment": "standalone", "algorithm": settings.algorithm, "clients": [client],
            "wall_s": round(time.time() - t0, 2)}
    metrics = write_run_outputs(settings.run_dir, history, meta)
    print(per_round_table(metrics, "rank1"))
    print(markdown_table(metrics["final"], f"standalone {LEARNER_NAMES.get(learner.KIND, learner.KIND)} on {client}"))
    return metrics
