"""Bad configuration is refused before any training, naming the key: by `fedureid simulate`
(within seconds, exit code 2, no Flower process started), by the ServerApp when a run
config reaches it directly (`flwr run`), and by an edge whose data folder is missing.
(pu.mu=1.5, rounds=0 and algorithm=nope are in tests/apps/test_simulate.py.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from federations import kill_processes_mentioning, make_grid, run_config, run_federation
from harness import run_client_app
from fedureid.records import to_record

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]

CASES = [
    (["pu.mu=-0.1"], "pu.mu"),
    (["rounds=-2"], "rounds"),
    (["model=nope"], "model"),
    (["model.arch=vgg16"], "model.arch"),
    (["data=nope"], "data"),
    (["data.root=/nonexistent/fedureid-data", "data.synth_preset=null"], "data.root"),
    (["federation.min_clients=0"], "federation.min_clients"),
    (["federation.grace=-1"], "federation.grace"),
    (["federation.grace=soon"], "federation.grace: must be a number or null"),
    (["pc.max_merge_percent=lots"], "pc.max_merge_percent: must be a number or null"),
    (["federation.secure_aggregation=true", "pu.where=edge", "federation.grace=10"], "federation.grace: must be null"),
    (["pu.where=moon"], "pu.where"),
    (["no_such_key=1"], "no_such_key"),
    (["pu.mu=abc"], "pu.mu: must be a number, got 'abc'"),  # a type error, not a traceback
    (["train.epochs=two"], "train.epochs: must be an integer"),
    (["data.clients=[x,y]"], "data.clients"),  # not clients of the synthetic federation
]


@pytest.mark.parametrize("overrides, key", CASES)
def test_simulate_refuses_bad_value_naming_the_key(tmp_path: Path, overrides: list[str], key: str):
    t0 = time.time()
    try:
        res = subprocess.run([sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke",
                              f"run_dir={tmp_path / 'run'}", *overrides],
                             cwd=REPO, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        kill_processes_mentioning(str(tmp_path))  # the SuperLink it started outlives the CLI
        pytest.fail(f"{overrides} was not refused within 20 s: a run started")
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert key in res.stderr, res.stderr
    assert time.time() - t0 < 30
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_synthetic_experiment_refuses_a_data_root_of_something_else_and_leaves_it_untouched(tmp_path: Path):
    root = tmp_path / "photos"
    (root / "album").mkdir(parents=True)
    (root / "album" / "a.jpg").write_bytes(b"not a federation")
    (root / "notes.txt").write_text("keep me")
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    res = subprocess.run([sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke",
                          f"run_dir={tmp_path / 'run'}", f"data.root={root}"],
                         cwd=REPO, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "data.root" in res.stderr and "not the synthetic federation 'smoke'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("run_config_change, key", [({"overrides": "pu.mu=1.5"}, "pu.mu"),
                                                    ({"overrides": "rounds=0"}, "rounds"),
                                                    ({"experiment": "nope"}, "experiment"),
                                                    ({"overrides": "algorithm=nope"}, "algorithm")])
def test_serverapp_refuses_bad_run_config_before_any_message(smoke_root: Path, tmp_path: Path,
                                                             run_config_change: dict, key: str):
    """What `flwr run --run-config` hands the ServerApp directly, without the CLI's check."""
    from reid_core.config.settings import ConfigError

    rc = run_config(tmp_path / "run", ["edge_a", "edge_b"], smoke_root)
    rc = {**rc, **run_config_change, "overrides": rc["overrides"] + " " + run_config_change.get("overrides", "")}
    grid = make_grid(smoke_root, tmp_path / "state", rc, ["edge_a", "edge_b"])
    run = run_federation(grid, rc, tmp_path / "run", smoke_root, tmp_path / "state", expect=ConfigError)
    assert isinstance(run.error, ConfigError) and key in str(run.error), run.error
    assert grid.exchanges == []
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_edge_with_missing_data_folder_names_the_key(smoke_root: Path, tmp_path: Path):
    """The error reply says which setting is wrong; the folder itself stays in the edge's log."""
    rc = run_config(tmp_path / "run", ["edge_a"], smoke_root)
    grid = make_grid(tmp_path / "no-such-root", tmp_path / "state", rc, ["edge_a"])
    request = Message(RecordDict({"arrays": to_record({}), "config": ConfigRecord({"server-round": 1})}),
                      dst_node_id=100, message_type=MessageType.TRAIN)
    request.metadata.__dict__["_message_id"] = "m1"
    reply = run_client_app(request, grid.edge("edge_a"))
    assert reply.has_error()
    assert "FileNotFoundError" in reply.error.reason and "'data-dir'" in reply.error.reason
    assert "client 'edge_a'" in reply.error.reason
    assert "no-such-root" not in reply.error.reason
    grid.close()
