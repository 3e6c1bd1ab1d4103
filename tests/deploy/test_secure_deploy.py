"""Secure aggregation deployed on 127.0.0.1: the documented walk-through as written (TLS, SuperNode
authentication, three edges whose node config demands secure aggregation, a 2-round job with
`federation.secure_aggregation=true pu.where=edge`), and an edge killed in the middle of the protocol."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fedureid.launcher import submit, superlink, supernode, write_run_config
from fedureid.processes import free_port, stop
from reid_core.config.settings import load_settings
from reid_core.federation.secure_sum import float_keys
from reid_core.federation.start import checkpoint_dir
from reid_core.federation.state import ServerState
from reid_core.models import build_model
from reid_core.runtime.arrays import model_arrays
from test_loopback_deploy import FAST, RUN_TIMEOUT_S, wait_online
from wire_tap import WireTap, found, windows

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from soak_checks import descendants  # noqa: E402

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1500, method="signal")]

EDGES = {"edge-a": "edge_a", "edge-b": "edge_b", "edge-c": "edge_c"}  # client-name -> synthetic client folder


def test_the_secure_walkthrough_as_written_completes(no_leftovers: Path):
    """scripts/deploy_walkthrough.sh --secure, the documented walk-through, on free loopback ports."""
    work = no_leftovers / "deploy"
    env = {**os.environ, "LINK_PORT": str(free_port()), "NODE_PORT": str(free_port())}
    t0 = time.time()
    proc = subprocess.Popen(["bash", str(REPO / "scripts" / "deploy_walkthrough.sh"), "--secure", str(work)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        stop(proc)
    assert proc.returncode == 0, out[-4000:]
    assert "finished:completed" in out and "rank-1" in out, out[-4000:]
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    for r in metrics["rounds"]:
        assert r["secure"] and r["rejected"] == [], r
        assert sorted(n for n, m in r["clients"].items() if "num_examples" in m) == sorted(EDGES)
        model_bytes = r["traffic"]["train_down_distinct_bytes"]
        assert r["traffic"]["train_up_bytes"] > 1.9 * len(EDGES) * model_bytes  # masked: 64 bits a value
    print(f"\nwalk-through (TLS + node auth + SecAgg+) 2 rounds: {time.time() - t0:.1f} s, final {metrics['final']}")


def _kill_when_training(log: Path, pid: int, killed: list[float], deadline: float) -> None:
    """SIGKILL every process of one edge (SuperNode, ClientApp) once its log says it is training in a
    secure round: it has shared its keys, and its masked vector never leaves."""
    while time.time() < deadline and not killed:
        if log.exists() and "secure round: training" in log.read_text(errors="replace"):
            for p in [pid, *descendants(pid)]:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed.append(time.time())
        time.sleep(0.1)


def test_an_edge_killed_mid_protocol_leaves_the_round_to_the_others(no_leftovers: Path, smoke_data: Path):
    """Real processes: edge-c is SIGKILLed after the key exchange, while it trains; SecAgg+ recovers the
    others' sum (the reconstruction threshold, 0.67 of 3, lets one go) and the run completes. The edges
    reach the SuperLink through a relay that keeps every byte: none is a piece of an edge's model."""
    work = no_leftovers
    run_dir = work / "run"
    overrides = [*FAST, "rounds=1", "federation.min_clients=2", "pu.where=edge", "federation.secure_aggregation=true",
                 f"run_dir={run_dir}", f"data.root={smoke_data}", "data.synth_preset=null",
                 f"data.clients=[{','.join(EDGES.values())}]"]
    config = write_run_config(work / "run_config.toml", "smoke", overrides, str(work))
    killed: list[float] = []
    with superlink(work / "link") as link, ExitStack() as stack:
        tap = WireTap(link.port)  # the edges reach the SuperLink through it
        stack.callback(tap.close)
        nodes = {name: stack.enter_context(supernode(replace(link, port=tap.port), work / "nodes", name, {
            "client-name": name, "data-dir": str(smoke_data / folder), "state-dir": str(work / "state" / name),
            "secure-aggregation": "true"})) for name, folder in EDGES.items()}
        assert len(wait_online(link, len(EDGES))) == len(EDGES)
        killer = threading.Thread(target=_kill_when_training, daemon=True,
                                  args=(nodes["edge-c"].log, nodes["edge-c"].proc.pid, killed,
                                        time.time() + RUN_TIMEOUT_S))
        killer.start()
        _, status = submit(link, config, log=work / "run.log", timeout=RUN_TIMEOUT_S)
        killed.append(-1.0)  # stops the killer if it never fired
        killer.join(timeout=5)
        link_log = link.log.read_text(errors="replace")[-4000:] if link.log.exists() else ""
    assert killed[0] > 0, "edge-c never reached the training stage"
    assert "secure round: training" in nodes["edge-c"].log_text()
    assert "masked before it leaves" not in nodes["edge-c"].log_text()  # killed before it could send
    assert status == "finished:completed", f"run ended {status}\n{link_log}"
    record = json.loads((run_dir / "metrics.json").read_text())["rounds"][0]
    assert record["secure"], record
    assert not any("halted" in r["reason"] for r in record["rejected"]), record["rejected"]
    assert sorted(n for n, m in record["clients"].items() if "num_examples" in m) == ["edge-a", "edge-b"]
    settings = load_settings(["experiment=smoke", *overrides], base_dir=str(work), check_data=False)
    torch.manual_seed(settings.seed)  # round 1 starts from the seeded initial model, rebuilt here
    sent = model_arrays(build_model(settings.model))
    _assert_the_global_moved_by_fedavg_of_the_edges_changes(settings, sent, record, work / "state", ["edge-a", "edge-b"])
    _assert_no_edge_model_on_the_wire(sent, tap, work / "state", ["edge-a", "edge-b"])


def _assert_no_edge_model_on_the_wire(sent: dict, tap: WireTap, state_root: Path, names: list[str]) -> None:
    """Every byte the edges sent: no piece of any edge's trained model or of its change. The model the
    edges received (`sent`) is found in what they got (so the tap sees arrays where they pass)."""
    largest = sorted(float_keys(sent), key=lambda k: sent[k].size)[-3:]
    assert all(found(tap.down, windows(sent[k])) >= 8 for k in largest), "the tap saw no array go down"
    for n in names:
        trained = dict(np.load(state_root / n / "local_model.npz"))
        for k in largest:
            change = trained[k].astype(np.float32) - sent[k].astype(np.float32)
            assert found(tap.up, windows(trained[k])) == 0, (n, k, "trained model on the wire")
            assert found(tap.up, windows(change)) == 0, (n, k, "change on the wire")
    assert len(tap.up) > 1.9 * len(names) * sum(sent[k].nbytes for k in float_keys(sent))  # masked: 64 bits a value


CLIP, LEVELS, MAX_WEIGHT = 8.0, 4194304, 10000  # secagg_clipping_range, _quantization_range, _max_weight


def _assert_the_global_moved_by_fedavg_of_the_edges_changes(settings, sent: dict, record: dict, state_root: Path,
                                                            names: list[str]) -> None:
    """What the ServerApp recovered from the masked vectors (the round's global model minus `sent`, the
    one it sent) is the edges' weighted mean change (each edge's saved trained model minus `sent`),
    within the quantisation bound."""
    after = ServerState.load(checkpoint_dir(settings)).global_arrays
    trained = {n: dict(np.load(state_root / n / "local_model.npz")) for n in names}
    weights = {n: round(record["clients"][n]["num_examples"] / MAX_WEIGHT * LEVELS) / LEVELS for n in names}
    total = sum(weights.values())
    bound = len(names) * (2 * CLIP / LEVELS) / total * 1.01
    worst, largest = 0.0, 0.0
    for key in float_keys(after):
        base = sent[key].astype(np.float64)
        expected = sum(w * (trained[n][key].astype(np.float64) - base) for n, w in weights.items()) / total
        moved = after[key].astype(np.float64) - base
        slack = bound + 1e-6 * np.abs(base) + 1e-7  # the float32 model adds its own rounding
        worst = max(worst, float(np.max(np.abs(moved - expected) - slack)))
        largest = max(largest, float(np.max(np.abs(expected))))
    assert worst <= 0.0, f"recovered mean change off by {worst:.3g} beyond the quantisation bound {bound:.3g}"
    assert largest > 100 * bound  # the edges' changes are far larger than the bound: the check can fail


def test_secure_aggregation_with_pu_at_the_cloud_is_refused_by_the_serverapp(no_leftovers: Path, smoke_data: Path):
    """Real processes: the run fails at once, its log naming the setting, before any edge is asked."""
    work = no_leftovers
    overrides = [*FAST, "pu.where=cloud", "federation.secure_aggregation=true", f"run_dir={work / 'run'}",
                 f"data.root={smoke_data}", "data.synth_preset=null", f"data.clients=[{','.join(EDGES.values())}]"]
    config = write_run_config(work / "run_config.toml", "smoke", overrides, str(work))
    with superlink(work / "link") as link:
        _, status = submit(link, config, log=work / "run.log", timeout=300)
    assert status == "finished:failed", status
    assert "needs pu.where=edge" in (work / "run.log").read_text(errors="replace")
    assert not (work / "run" / "metrics.json").exists()
