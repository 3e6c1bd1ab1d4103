"""Differential privacy through the real apps: each edge's change leaves clipped, the round's noise and
the epsilon spent so far are in metrics.json, in the plain and in the secure mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federations import CLIENTS, arrays_of, make_grid, run_config, run_federation
from reid_core.federation.secure_sum import float_keys

pytestmark = pytest.mark.faults

DP = ("pu.where=edge", "federation.dp_noise_multiplier=1.0", "federation.dp_clipping_norm=0.5")


def dp_run(smoke_root: Path, tmp_path: Path, *extra: str):
    rc = run_config(tmp_path / "run", CLIENTS, smoke_root, *DP, *extra, rounds=2)
    return run_federation(make_grid(smoke_root, tmp_path / "edge_state", rc), rc, tmp_path / "run", smoke_root,
                          tmp_path / "edge_state")


def test_edges_send_clipped_changes_and_each_round_reports_its_epsilon(smoke_root, tmp_path):
    run = dp_run(smoke_root, tmp_path)
    assert run.error is None
    train = [x for x in run.grid.exchanges if x.message_type == "train"]
    assert len(train) == 2 * len(CLIENTS)
    for x in train:
        sent, trained = arrays_of(x.request), arrays_of(x.reply)
        norm = np.sqrt(sum(float(np.sum((trained[k].astype(np.float64) - sent[k]) ** 2)) for k in float_keys(sent)))
        assert norm <= 0.5 * (1 + 1e-4), (x.edge, norm)
        assert float(x.reply.content["metrics"]["change-norm"]) > 0.5  # honest changes here exceed C: clipping acted
    eps = [r["dp"]["epsilon"] for r in run.metrics["rounds"]]
    assert 0 < eps[0] < eps[1] and run.metrics["rounds"][0]["dp"]["noise_std"] > 0
    assert "privacy spent: epsilon" in run.logs.text(edge_side=False)


def test_secure_aggregation_with_dp_reports_epsilon_too(smoke_root, tmp_path):
    run = dp_run(smoke_root, tmp_path, "federation.secure_aggregation=true")
    assert run.error is None
    rounds = run.metrics["rounds"]
    assert all(r["secure"] and r["dp"]["epsilon"] > 0 for r in rounds)
    assert rounds[0]["dp"]["epsilon"] < rounds[1]["dp"]["epsilon"]
