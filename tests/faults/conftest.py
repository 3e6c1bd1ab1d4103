"""Fixtures for the fault and privacy tests: the smoke federation and one in-process
federation with damaged data that several tests inspect (see harness.py, federations.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from flwr.supercore.task_identity import TaskIdentity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py, federations.py

from federations import CLIENTS, DAMAGE, FederationRun, corrupt, images, make_grid, run_config, run_federation  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _run_identity():
    """Messages are created inside a run in Flower; give the test process one."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    yield


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke federation (edge_a 72, edge_b 60, edge_c 32 training images), written once."""
    from reid_core.data.federation import ensure_federation

    return Path(ensure_federation(tmp_path_factory.mktemp("smoke") / "data", seed=0, preset="smoke"))


@pytest.fixture(scope="session")
def faulty_run(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory) -> FederationRun:
    """2 rounds, 3 edges: edge_a has 3 damaged training images (one of each kind), 1 damaged
    query image and a stray text file; edge_b is clean; every training image of edge_c is damaged."""
    return _faulty_run(smoke_root, tmp_path_factory, "faulty")


@pytest.fixture(scope="session")
def faulty_run_cc(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory) -> FederationRun:
    """The same damaged federation with the cluster-contrast learner (small k1: smoke edges are tiny)."""
    return _faulty_run(smoke_root, tmp_path_factory, "faulty_cc", "learner=cc", "cc.k1=8", "cc.k2=3")


def _faulty_run(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory, name: str, *extra: str) -> FederationRun:
    base = tmp_path_factory.mktemp(name)
    data = base / "data"
    shutil.copytree(smoke_root, data)
    damaged = images(data / "edge_a" / "bounding_box_train")[5:8]
    for path, how in zip(damaged, DAMAGE):
        corrupt(path, how)
    corrupt(images(data / "edge_a" / "query")[0], "truncated")
    (data / "edge_a" / "bounding_box_train" / "notes.txt").write_text("not a Market file name\n")
    for i, path in enumerate(images(data / "edge_c" / "bounding_box_train")):
        corrupt(path, DAMAGE[i % 3])
    run_dir, state = base / "run", base / "edge_state"
    rc = run_config(run_dir, CLIENTS, data, *extra, rounds=2, min_clients=2)
    run = run_federation(make_grid(data, state, rc), rc, run_dir, data, state)
    run.extra["damaged_train"] = {"edge_a": [p.name for p in damaged]}
    return run
