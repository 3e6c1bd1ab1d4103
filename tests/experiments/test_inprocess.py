"""The in-process federation (no Flower) against `fedureid simulate` on the smoke federation."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reid_core.config.settings import load_settings
from reid_core.experiments.inprocess import run_inprocess

REPO = Path(__file__).resolve().parents[2]


def _settings(run_dir: Path, data: Path, *extra: str):
    return load_settings(["experiment=smoke", f"run_dir={run_dir}", f"data.root={data}", *extra])


def test_deadline_ends_after_whole_rounds(tmp_path):
    # The first round always runs; with the deadline spent, the second does not start.
    metrics = run_inprocess(_settings(tmp_path / "run", tmp_path / "data", "rounds=2"), deadline_s=0.001)
    assert [r["round"] for r in metrics["rounds"]] == [1]
    assert metrics["engine"] == "inprocess" and metrics["initial"]
    assert sorted(metrics["final"]) == ["edge_a", "edge_b", "edge_c"]


@pytest.mark.slow
def test_inprocess_matches_flower_simulation(tmp_path):
    data = tmp_path / "data"
    # learner=cc on one edge: both learners go through the same loop
    extra = ["+learner_for.edge_b=cc"]
    flower = subprocess.run([sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke",
                             f"run_dir={tmp_path / 'sim'}", f"data.root={data}", *extra],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert flower.returncode == 0, flower.stderr[-3000:]
    ours = run_inprocess(_settings(tmp_path / "inproc", data, *extra))
    theirs = json.loads((tmp_path / "sim" / "metrics.json").read_text())
    assert [r["round"] for r in ours["rounds"]] == [r["round"] for r in theirs["rounds"]] == [1, 2]
    for mine, ref in zip(ours["rounds"], theirs["rounds"]):
        for client, m in ref["clients"].items():
            got = mine["clients"][client]
            assert got["clusters"] == m["clusters"] and got["num_examples"] == m["num_examples"], client
            assert got["epochs"] == m["epochs"], client
            # same learners, same FedAvg and PU; only float summation order (threads) differs
            assert abs(got["mAP"] - m["mAP"]) < 1.5, (client, got["mAP"], m["mAP"])
            assert abs(got["train-loss"] - m["train-loss"]) < 0.05, client


def test_bad_deadline_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="deadline_s"):
        run_inprocess(_settings(tmp_path / "run", tmp_path / "data"), deadline_s=-1)
    assert not (tmp_path / "run").exists()


def test_an_earlier_run_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    (run / "edge_state").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    with pytest.raises(FileExistsError, match="holds an earlier run .*choose another run_dir"):
        run_inprocess(_settings(run, tmp_path / "data"))
    assert (run / "metrics.json").read_text() == "{}"
