"""A deployed edge told to misbehave (node_config `misbehave`) is screened out, named in the log and metrics.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from federations import CLIENTS, make_grid, run_config, run_federation

pytestmark = pytest.mark.faults


def test_a_scaling_edge_is_screened_out_every_round_and_still_evaluated(smoke_root: Path, tmp_path: Path):
    rc = run_config(tmp_path / "run", CLIENTS, smoke_root, "federation.outlier_k=5", rounds=2)
    grid = make_grid(smoke_root, tmp_path / "edge_state", rc)
    grid.edge("edge_b").context.node_config["misbehave"] = "scale"
    run = run_federation(grid, rc, tmp_path / "run", smoke_root, tmp_path / "edge_state")
    assert run.error is None
    server_log = run.logs.text(edge_side=False)
    assert "edge_b misbehaves on purpose: scale" in run.logs.text(edge_side=True)
    for rnd in run.metrics["rounds"]:
        screened = [r for r in rnd["rejected"] if r["phase"] == "screening"]
        assert [r["client"] for r in screened] == ["edge_b"], rnd["rejected"]
        assert f"round {rnd['round']}: rejected update from 'edge_b': screened out" in server_log
        assert sorted(c for c, m in rnd["clients"].items() if "num_examples" in m) == ["edge_a", "edge_c"]
        assert "rank1" in rnd["clients"]["edge_b"]  # it still gets its personalised model and is evaluated
