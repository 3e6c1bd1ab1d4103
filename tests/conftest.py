"""Shared fixtures of the inference and lab tests: the small synthetic federation and a fake run with a tiny random checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_core.runtime.arrays import model_arrays
from reid_core.federation.state import ServerState
from reid_core.config.schema import ModelConfig
from reid_core.data.federation import ensure_federation
from reid_core.models import build_model

CLIENTS = ("edge_a", "edge_b", "edge_c")
MU = 0.5


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """The `smoke` synthetic federation (3 clients, a few dozen images each)."""
    return ensure_federation(tmp_path_factory.mktemp("data") / "synth_smoke", preset="smoke")


def tiny_arrays(seed: int) -> dict[str, np.ndarray]:
    """Arrays of a randomly initialised tiny model (the smoke experiment's architecture)."""
    torch.manual_seed(seed)
    return model_arrays(build_model(ModelConfig(arch="tiny", embed_dim=128, weights=None)))


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory, smoke_data) -> Path:
    """A run folder as `fedureid simulate experiment=smoke` leaves it: checkpoint + metrics.json."""
    run_dir = tmp_path_factory.mktemp("run")
    state = ServerState(round=2, global_arrays=tiny_arrays(0),
                        client_arrays={c: tiny_arrays(i + 1) for i, c in enumerate(CLIENTS)},
                        client_examples={c: 10 for c in CLIENTS})
    state.save(run_dir / "checkpoint")
    metrics = {"rounds": [], "final": {}, "experiment": "smoke", "algorithm": "fedureid", "mu": MU,
               "pu_where": "cloud", "clients": list(CLIENTS),
               "overrides": ["experiment=smoke", f"run_dir={run_dir}", f"data.root={smoke_data}"]}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "report.md").write_text("# Run report: smoke\n\nfinal table\n")
    return run_dir
