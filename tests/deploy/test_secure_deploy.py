"""Secure aggregation deployed on 127.0.0.1: TLS, SuperNode authentication, three edges whose node
config demands secure aggregation (`secure-aggregation="true"`), a 2-round job with
`federation.secure_aggregation=true pu.where=edge` (docs/deployment.md, "Secure aggregation")."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from fedureid.launcher import register_supernode, submit, superlink, supernode, write_run_config
from test_loopback_deploy import FAST, RUN_TIMEOUT_S, wait_online

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1500, method="signal")]

EDGES = {"edge-a": "edge_a", "edge-b": "edge_b", "edge-c": "edge_c"}  # client-name -> synthetic client folder


def test_tls_node_auth_secure_aggregation_completes(no_leftovers: Path, smoke_data: Path, dev_certs: Path):
    work = no_leftovers
    run_dir = work / "run"
    tls = {"ca": str(dev_certs / "ca.crt"), "cert": str(dev_certs / "server.pem"),
           "key": str(dev_certs / "server.key")}
    overrides = [*FAST, "federation.min_clients=3", "pu.where=edge", "federation.secure_aggregation=true",
                 f"run_dir={run_dir}", f"data.root={smoke_data}", "data.synth_preset=null",
                 f"data.clients=[{','.join(EDGES.values())}]"]
    config = write_run_config(work / "run_config.toml", "smoke", overrides, str(work))
    t0 = time.time()
    with superlink(work / "link", tls=tls, node_auth=True) as link, ExitStack() as stack:
        for name in EDGES:
            assert register_supernode(link, dev_certs / "nodes" / f"{name}.pub", name).get("success") is True
        for name, folder in EDGES.items():
            node_config = {"client-name": name, "data-dir": str(smoke_data / folder),
                           "state-dir": str(work / "state" / name), "secure-aggregation": "true"}
            stack.enter_context(supernode(link, work / "nodes", name, node_config,
                                          auth_key=str(dev_certs / "nodes" / name)))
        assert len(wait_online(link, len(EDGES))) == len(EDGES)
        _, status = submit(link, config, log=work / "run.log", timeout=RUN_TIMEOUT_S)
        link_log = link.log.read_text(errors="replace")[-4000:] if link.log.exists() else ""
    assert status == "finished:completed", f"run ended {status}\n{link_log}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    for r in metrics["rounds"]:
        assert r["secure"] and r["rejected"] == [], r
        assert sorted(n for n, m in r["clients"].items() if "num_examples" in m) == sorted(EDGES)
        model_bytes = r["traffic"]["train_down_distinct_bytes"]
        assert r["traffic"]["train_up_bytes"] > 1.9 * len(EDGES) * model_bytes  # masked: 64 bits a value
    print(f"\ndeployed (TLS + node auth + SecAgg+) 2 rounds: {time.time() - t0:.1f} s, final {metrics['final']}")
