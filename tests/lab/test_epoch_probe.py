"""lab.epoch_probe records every edge's epochs without changing the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import reid_core.learners.buc.trainer as buc_trainer
from lab.epoch_probe import neighbour_overlap, probe


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


def test_the_retrieval_probe_adds_its_measures_and_leaves_training_as_it_was(tmp_path: Path):
    overrides = ["experiment=smoke", "train.first_round_epochs=2", "train.epochs=1"]
    plain = probe([*overrides, f"run_dir={tmp_path / 'plain'}"])
    measured = probe([*overrides, f"run_dir={tmp_path / 'measured'}"], retrieval=True)
    assert sorted(measured) == sorted(plain)
    for key, rows in measured.items():
        assert [row[:2] for row in rows] == plain[key]  # the same losses and precisions, epoch by epoch
        for _loss, _precision, overlap, rank1, mean_ap in rows:
            assert 0.0 <= overlap <= 1.0 and 0.0 <= rank1 <= 100.0 and 0.0 < mean_ap <= 100.0


def test_neighbour_overlap_counts_the_neighbours_kept_row_by_row():
    before = np.array([[1, 2, 3, 4], [0, 2, 3, 4]])
    after = np.array([[4, 3, 9, 8], [0, 2, 3, 4]])
    assert neighbour_overlap(before, after) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError, match="one shape"):
        neighbour_overlap(before, after[:, :3])
