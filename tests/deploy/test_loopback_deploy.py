"""Real deployment on 127.0.0.1: flower-superlink + one flower-supernode per edge, a 2-round
FedUReID job submitted with `flwr run`, to status finished:completed.

- insecure, process isolation (SuperExecs started by us, as in docker/compose.yml)
- TLS + SuperNode authentication: registered edges train, an unregistered key is refused
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from fedureid.launcher import (
    list_supernodes,
    register_supernode,
    submit,
    superexec,
    superlink,
    supernode,
    write_run_config,
)

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1500, method="signal")]

EDGES = {"edge-a": "edge_a", "edge-b": "edge_b"}  # client-name -> synthetic client folder
RUN_TIMEOUT_S = 900.0  # generous: other jobs may share the 2 cores
# The smoke experiment, shortened: the point is the transport, not accuracy.
FAST = ["rounds=2", "federation.min_clients=2", "train.first_round_epochs=1", "train.epochs=1"]


def run_config_file(work: Path, data: Path, run_dir: Path) -> Path:
    """Run config for a deployment: edges read their own data-dir; the server only checks names."""
    overrides = [*FAST, f"run_dir={run_dir}", f"data.root={data}", "data.synth_preset=null",
                 f"data.clients=[{','.join(EDGES.values())}]"]
    return write_run_config(work / "run_config.toml", "smoke", overrides, str(work))


def node_config(data: Path, work: Path, name: str) -> dict[str, str]:
    return {"client-name": name, "data-dir": str(data / EDGES[name]), "state-dir": str(work / "state" / name)}


def wait_online(link, count: int, timeout: float = 180.0) -> list[dict]:
    """Block until `count` SuperNodes are online at the SuperLink."""
    deadline = time.time() + timeout
    while True:
        online = [n for n in list_supernodes(link) if n.get("status") == "online"]
        if len(online) >= count or time.time() > deadline:
            return online
        time.sleep(1.0)


def assert_completed_with_metrics(status: str, run_dir: Path, link_log: Path) -> dict:
    log_tail = link_log.read_text(errors="replace")[-4000:] if link_log.exists() else ""
    assert status == "finished:completed", f"run ended {status}\n{log_tail}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(metrics["final"]) == sorted(EDGES), metrics["final"]
    for name, m in metrics["final"].items():
        for key in ("rank1", "rank5", "rank10", "mAP"):
            assert 0.0 <= m[key] <= 100.0, (name, key, m)
    rounds = [r["round"] for r in metrics["rounds"]]
    assert rounds == [1, 2], rounds
    for r in metrics["rounds"]:
        assert sorted(r["clients"]) == sorted(EDGES), r  # both edges trained and evaluated each round
    return metrics


def test_insecure_process_isolation_run_completes(no_leftovers: Path, smoke_data: Path):
    """SuperLink + ServerApp SuperExec + per edge SuperNode + ClientApp SuperExec (compose layout)."""
    work = no_leftovers
    run_dir = work / "run"
    t0 = time.time()
    with superlink(work / "link", isolation="process") as link, ExitStack() as stack:
        stack.enter_context(superexec(link.address, work / "superexec-serverapp.log", work / "serverapp_home"))
        for name in EDGES:
            node = stack.enter_context(supernode(link, work / "nodes", name, node_config(smoke_data, work, name),
                                                 isolation="process"))
            stack.enter_context(superexec(f"127.0.0.1:{node.port}", work / f"superexec-{name}.log",
                                          work / f"clientapp_home_{name}"))
        run_id, status = submit(link, run_config_file(work, smoke_data, run_dir), log=work / "run.log",
                                timeout=RUN_TIMEOUT_S)
        link_log = link.log
    metrics = assert_completed_with_metrics(status, run_dir, link_log)
    print(f"\ndeployed (insecure, process isolation) 2 rounds: {time.time() - t0:.1f} s, "
          f"ServerApp {metrics.get('wall_s_serverapp')} s, final {metrics['final']}")


def test_tls_node_auth_refuses_unregistered_and_completes(no_leftovers: Path, smoke_data: Path,
                                                          dev_certs: Path):
    """TLS on every API, --enable-supernode-auth: registered edges run, an unknown key is refused."""
    work = no_leftovers
    run_dir = work / "run"
    tls = {"ca": str(dev_certs / "ca.crt"), "cert": str(dev_certs / "server.pem"),
           "key": str(dev_certs / "server.key")}
    t0 = time.time()
    with superlink(work / "link", tls=tls, node_auth=True) as link, ExitStack() as stack:
        for name in EDGES:
            reply = register_supernode(link, dev_certs / "nodes" / f"{name}.pub", name)
            assert reply.get("success") is True, reply
        for name in EDGES:
            stack.enter_context(supernode(link, work / "nodes", name, node_config(smoke_data, work, name),
                                          auth_key=str(dev_certs / "nodes" / name)))
        rogue = stack.enter_context(supernode(link, work / "nodes", "rogue",
                                              node_config(smoke_data, work, "edge-a") | {"client-name": "rogue"},
                                              auth_key=str(dev_certs / "nodes" / "rogue"), wait=False))
        rogue_rc = rogue.proc.wait(timeout=180)  # refused at activation; it must not retry forever
        rogue_log = rogue.log_text()
        online = wait_online(link, len(EDGES))
        run_id, status = submit(link, run_config_file(work, smoke_data, run_dir), log=work / "run.log",
                                timeout=RUN_TIMEOUT_S)
        link_log = link.log
        nodes_after = list_supernodes(link)
    assert rogue_rc != 0, rogue_log
    assert "Failed to activate SuperNode" in rogue_log and "305" in rogue_log, rogue_log[-2000:]
    assert len(online) == len(EDGES), online
    assert len(nodes_after) == len(EDGES), nodes_after  # the intruder never became a node
    metrics = assert_completed_with_metrics(status, run_dir, link_log)
    print(f"\ndeployed (TLS + node auth) 2 rounds: {time.time() - t0:.1f} s, "
          f"ServerApp {metrics.get('wall_s_serverapp')} s, final {metrics['final']}")
