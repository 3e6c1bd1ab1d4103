"""lab.epoch_probe records every edge's epochs without changing the run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reid_core.learners.buc.trainer as buc_trainer
from lab.epoch_probe import main, neighbour_overlap, probe, replay
from reid_core.config.schema import EarlyStopConfig


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


def test_replay_stops_each_round_where_the_trend_rule_would():
    """Worked by hand: window 1, 3% (min 2 epochs). r1: 4.0 -> 3.9 is 2.5% down, so it stops after epoch 2;
    r2 falls 20% and 25%: all three epochs."""
    seen = {"a r1": [[4.0, 0.1], [3.9, 0.2], [3.0, 0.3], [2.99, 0.3]], "a r2": [[5.0, 0.1], [4.0, 0.2], [3.0, 0.3]]}
    config = EarlyStopConfig(rule="trend", min_delta=0.03, window=1, min_epochs=2)
    assert replay(seen, config) == {"a r1": 2, "a r2": 3}
    assert replay(seen, replace(config, min_epochs=3)) == {"a r1": 4, "a r2": 3}  # 3.9 -> 3.0 still falls: to the end
    assert replay(seen, EarlyStopConfig(rule="none")) == {"a r1": 4, "a r2": 3}
    with pytest.raises(ValueError, match="cannot be replayed"):
        replay(seen, EarlyStopConfig(rule="precision"))


def test_replay_from_the_command_line_counts_the_epochs_saved(tmp_path: Path, capsys):
    probe_file = tmp_path / "probe.json"
    probe_file.write_text(json.dumps({"a r1": [[4.0, 0.1], [3.9, 0.2], [3.0, 0.3], [2.99, 0.3]]}))
    assert main(["--replay", str(probe_file), "pe.rule=trend", "pe.window=1", "pe.min_delta=0.03", "pe.min_epochs=2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 of 4 epochs, 50.0% saved"
