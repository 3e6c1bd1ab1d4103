"""An edge that takes its messages and never answers: the phase's timeout (or grace) passes, the edge is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from federations import CLIENTS, make_grid, run_config, run_federation
from server_app.strategy import NO_REPLY

pytestmark = pytest.mark.faults


def _edge_b_mute_in_round_2_training(smoke_root: Path, tmp_path: Path, *extra: str):
    rc = run_config(tmp_path / "run", CLIENTS, smoke_root, *extra, rounds=2)
    grid = make_grid(smoke_root, tmp_path / "edge_state", rc)
    edge_b = grid.edge("edge_b")

    def before_send(batch: str, rnd: int) -> None:
        edge_b.mute = batch == "train" and rnd == 2

    grid.before_send = before_send
    return run_federation(grid, rc, tmp_path / "run", smoke_root, tmp_path / "edge_state"), grid


def test_an_edge_mute_in_one_phase_is_named_and_the_round_completes(smoke_root: Path, tmp_path: Path):
    run, _ = _edge_b_mute_in_round_2_training(smoke_root, tmp_path)
    assert run.error is None
    r1, r2 = run.metrics["rounds"]
    assert r1["rejected"] == []
    assert r2["rejected"] == [{"client": "edge_b", "reason": NO_REPLY, "phase": "train"}]
    assert "num_examples" not in r2["clients"]["edge_b"] and "rank1" in r2["clients"]["edge_b"]
    assert f"rejected update from 'edge_b': {NO_REPLY}" in run.logs.text(edge_side=False)


def test_with_a_grace_the_phase_goes_on_without_the_mute_edge(smoke_root: Path, tmp_path: Path):
    """federation.grace: once min_clients answered, the phase ends after the quiet spell, not the timeout."""
    run, grid = _edge_b_mute_in_round_2_training(smoke_root, tmp_path, "federation.grace=0", "federation.timeout=3600")
    assert run.error is None and grid.pushed > 0  # the ServerApp pushed and pulled (QuorumGrid)
    r1, r2 = run.metrics["rounds"]
    assert r1["rejected"] == []
    assert r2["rejected"] == [{"client": "edge_b", "reason": NO_REPLY, "phase": "train"}]
    assert run.wall_s < 600  # not the hour's timeout
