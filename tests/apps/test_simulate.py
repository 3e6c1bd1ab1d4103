"""`fedureid simulate`: a real Flower simulation end to end, and fast refusal of bad config."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FEDUREID = [sys.executable, "-m", "fedureid.cli"]


def run_cli(*args, timeout=900):
    return subprocess.run([*FEDUREID, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("override, key", [("pu.mu=1.5", "pu.mu"), ("rounds=0", "rounds"),
                                           ("algorithm=nope", "algorithm")])
def test_bad_config_refused_within_seconds(tmp_path, override, key):
    t0 = time.time()
    res = run_cli("simulate", "experiment=smoke", f"run_dir={tmp_path}", override, timeout=60)
    assert res.returncode != 0
    assert key in res.stderr
    assert time.time() - t0 < 30
    assert not (tmp_path / "flower").exists()  # nothing was started


@pytest.mark.slow
def test_simulate_smoke_end_to_end(tmp_path):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    res = run_cli("simulate", "experiment=smoke", f"run_dir={run_dir}", f"data.root={data}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "finished:completed" in res.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    clients = ["edge_a", "edge_b", "edge_c"]
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    for rnd in metrics["rounds"]:
        assert sorted(rnd["clients"]) == clients
        for m in rnd["clients"].values():
            for key in ("rank1", "rank5", "rank10", "mAP", "epochs", "clusters", "num_examples"):
                assert key in m, key
            assert 0.0 <= m["rank1"] <= m["rank5"] <= m["rank10"] <= 100.0
    assert sorted(metrics["final"]) == clients
    # round 2: fedureid's edges train from the one global model and evaluate their own theta_k
    t = metrics["rounds"][1]["traffic"]
    assert t["train_down_distinct"] == 1
    assert t["train_up_bytes"] == t["train_down_bytes"] == 3 * t["train_down_distinct_bytes"] > 0
    assert t["evaluate_down_distinct"] == 3 and t["evaluate_down_bytes"] == t["train_down_bytes"]
    assert (run_dir / "report.md").read_text().count("| edge_") >= 3
    assert (run_dir / "curves.png").stat().st_size > 1000
    # the checkpoint holds the last round; a rerun resumes and has nothing left to do
    res2 = run_cli("simulate", "experiment=smoke", f"run_dir={run_dir}", f"data.root={data}")
    assert res2.returncode == 0, res2.stderr[-2000:]
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["rounds"] == metrics["rounds"]
