"""lab.epoch_probe records every edge's epochs without changing the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import reid_core.learners.buc.trainer as buc_trainer
from lab.epoch_probe import probe


def test_probe_records_each_epoch_of_each_edge_and_round(tmp_path: Path):
    original = buc_trainer.run_epochs
    seen = probe(["experiment=smoke", f"run_dir={tmp_path / 'run'}", "train.first_round_epochs=2", "train.epochs=1"])
    assert buc_trainer.run_epochs is original  # put back after the run
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    clients = sorted(metrics["rounds"][0]["clients"])
    assert sorted(seen) == sorted(f"{c} r{r}" for c in clients for r in (1, 2))
    for name in clients:
        assert len(seen[f"{name} r1"]) == 2 and len(seen[f"{name} r2"]) == 1
        assert seen[f"{name} r2"][0][0] == pytest.approx(metrics["rounds"][1]["clients"][name]["train-loss"], abs=1e-4)
