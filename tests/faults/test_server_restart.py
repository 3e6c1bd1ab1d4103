"""Server restart: the ServerApp dies after round r; a rerun resumes at round r+1 with the same
global and per-client models and the full history - nothing lost, nothing repeated.

In-process: the ServerApp is killed at the worst moment, after the edges finished training
round 2 but before it aggregated them. A crash between the two checkpoint files is tested
on `ServerState` directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federations import arrays_of, make_grid, metrics_of, run_config, run_federation
from harness import ServerKilled

pytestmark = pytest.mark.faults

CLIENTS = ("edge_b", "edge_c")


def kill_after_training(round_: int):
    def hook(message_type: str, server_round: int) -> None:
        if message_type == "train" and server_round == round_:
            raise ServerKilled(f"ServerApp killed after the edges trained round {round_}")
    return hook


@pytest.fixture(scope="module")
def restart_runs(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("restart")
    runs = {}
    for label in ("uninterrupted", "killed"):
        run_dir, state = base / label / "run", base / label / "edge_state"
        rc = run_config(run_dir, CLIENTS, smoke_root, rounds=3, min_clients=2)
        grid = make_grid(smoke_root, state, rc, CLIENTS)
        if label == "killed":
            grid.after_replies = kill_after_training(2)
        runs[label] = run_federation(grid, rc, run_dir, smoke_root, state, expect=ServerKilled)
        if label == "killed":
            runs["checkpoint_after_kill"] = runs[label].checkpoint_meta()
            # the same command again: same run_dir, the same edges (same state folders)
            runs["resumed"] = run_federation(make_grid(smoke_root, state, rc, CLIENTS), rc, run_dir,
                                             smoke_root, state)
    return runs


def train_requests(run, rnd: int) -> dict:
    return {x.edge: x.request for x in run.exchanges(message_type="train", server_round=rnd)}


@pytest.mark.slow
def test_resumed_run_continues_at_next_round_with_the_same_models(restart_runs):
    killed, resumed = restart_runs["killed"], restart_runs["resumed"]
    assert isinstance(killed.error, ServerKilled) and resumed.error is None
    assert restart_runs["checkpoint_after_kill"]["round"] == 1
    # nothing repeated: the resumed server starts at round 2 and never sends round 1 again
    assert sorted({x.server_round for x in resumed.exchanges(message_type="train")}) == [2, 3]
    # the same per-client models as the killed server sent for round 2 (restored from the checkpoint)
    before, after = train_requests(killed, 2), train_requests(resumed, 2)
    assert sorted(before) == sorted(after) == sorted(CLIENTS)
    for name in CLIENTS:
        a, b = arrays_of(before[name]), arrays_of(after[name])
        assert list(a) == list(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name} {k}")


@pytest.mark.slow
def test_resumed_history_is_complete_and_edges_do_not_redo_their_clustering(restart_runs):
    killed, resumed = restart_runs["killed"], restart_runs["resumed"]
    history = resumed.metrics["rounds"]
    assert [r["round"] for r in history] == [1, 2, 3]
    saved_round1 = [h for h in restart_runs["checkpoint_after_kill"]["history"] if h["round"] == 1]
    assert history[0] == saved_round1[0]  # round 1 kept as it was
    for rnd in history:
        assert sorted(rnd["clients"]) == sorted(CLIENTS) and rnd["rejected"] == []
    # the edges had already merged their clusters for round 2; redoing round 2 must start from
    # their round-1 clustering again, not merge a second time
    for name in CLIENTS:
        first = metrics_of(next(x.reply for x in killed.exchanges(name, "train", 2)))
        again = metrics_of(next(x.reply for x in resumed.exchanges(name, "train", 2)))
        for key in ("clusters-trained", "clusters", "merged", "num-examples"):
            assert again[key] == first[key], (name, key, first, again)


@pytest.mark.slow
def test_resumed_run_ends_where_an_uninterrupted_run_ends(restart_runs):
    """Training is seeded: the killed-and-resumed run matches one that never stopped."""
    from reid_core.federation.state import ServerState

    clean = ServerState.load(restart_runs["uninterrupted"].run_dir / "checkpoint")
    resumed = ServerState.load(restart_runs["resumed"].run_dir / "checkpoint")
    assert resumed.round == clean.round == 3
    assert sorted(resumed.client_arrays) == sorted(clean.client_arrays)
    for who, want, got in [("global", clean.global_arrays, resumed.global_arrays),
                           *[(n, clean.client_arrays[n], resumed.client_arrays[n]) for n in CLIENTS]]:
        for k, v in want.items():  # bit-identical on one machine; a tolerance for thread scheduling
            np.testing.assert_allclose(got[k], v, rtol=1e-6, atol=1e-7, err_msg=f"{who} {k}")
    skip = ("wall_s", "time-train", "time-cluster", "time-diagnostics", "time-compute", "time-eval")
    for a, b in zip(clean.history, resumed.history):
        for name in CLIENTS:
            for key, value in a["clients"][name].items():
                if key not in skip:
                    assert b["clients"][name][key] == pytest.approx(value, rel=1e-3, abs=1e-3), (a["round"], name, key)


def test_crash_between_checkpoint_files_leaves_the_previous_round(tmp_path, monkeypatch):
    """kill -9 after the arrays file but before meta.json: loading gives round r, consistently."""
    import reid_core.federation.state as checkpoint
    from reid_core.federation.state import ServerState

    def arrays(v):
        return {"w": np.full(3, v, np.float32)}

    state = ServerState(round=1, global_arrays=arrays(1.0), client_arrays={"a": arrays(1.5)},
                        client_examples={"a": 10}, history=[{"round": 1, "clients": {}, "rejected": []}])
    state.save(tmp_path)
    real_write = checkpoint._atomic_write

    def dies_at_meta(path, write):
        if path.name == checkpoint.META_FILE:
            raise ServerKilled("killed while checkpointing")
        real_write(path, write)

    monkeypatch.setattr(checkpoint, "_atomic_write", dies_at_meta)
    state.round, state.global_arrays, state.client_arrays["a"] = 2, arrays(2.0), arrays(2.5)
    state.history.append({"round": 2, "clients": {}, "rejected": []})
    with pytest.raises(ServerKilled):
        state.save(tmp_path)
    loaded = ServerState.load(tmp_path)
    assert loaded.round == 1 and len(loaded.history) == 1
    np.testing.assert_array_equal(loaded.global_arrays["w"], 1.0)
    np.testing.assert_array_equal(loaded.client_arrays["a"]["w"], 1.5)
    monkeypatch.undo()
    state.save(tmp_path)  # the next save works and leaves one arrays file
    assert ServerState.load(tmp_path).round == 2
    assert len(list(tmp_path.glob("*.npz"))) == 1


@pytest.mark.slow
@pytest.mark.timeout(1800, method="signal")
def test_simulation_killed_after_round_1_resumes_when_rerun(smoke_root: Path, tmp_path: Path):
    """`fedureid simulate`, SIGKILLed with every Flower process it started once round 1 is
    checkpointed; the same command again finishes rounds 2 and 3 on top of it."""
    import json
    import subprocess
    import sys
    import time

    from federations import kill_processes_mentioning

    repo = Path(__file__).resolve().parents[2]
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke", f"run_dir={run_dir}",
           f"data.root={smoke_root}", "data.synth_preset=null", "rounds=3", "train.first_round_epochs=1",
           "train.epochs=1"]
    meta_file = run_dir / "checkpoint" / "meta.json"
    with open(tmp_path / "first.log", "wb") as out:
        first = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 900
        while not (meta_file.exists() and json.loads(meta_file.read_text())["round"] >= 1):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "round 1 was never checkpointed"
            time.sleep(0.5)
    finally:
        killed = kill_processes_mentioning(str(tmp_path))  # CLI, SuperLink, simulation, Ray workers
        first.wait(timeout=60)
    saved = json.loads(meta_file.read_text())
    assert saved["round"] == 1 and len(killed) >= 3, (saved["round"], killed)
    assert not (run_dir / "metrics.json").exists()  # it really died mid-run

    again = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1200)
    kill_processes_mentioning(str(tmp_path))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming from checkpoint after round 1" in again.stdout
    assert "rounds=3 (remaining 2)" in again.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2, 3]
    assert metrics["rounds"][0] == [h for h in saved["history"] if h["round"] == 1][0]  # as checkpointed, not redone
    for rnd in metrics["rounds"][1:]:
        assert sorted(rnd["clients"]) == ["edge_a", "edge_b", "edge_c"] and rnd["rejected"] == []
