"""Fixtures for the deployment tests: synthetic edge data, development certificates, and a
guard that no Flower process started by a test outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke federation (edge_a, edge_b, edge_c in Market layout), written once."""
    from reid_core.data.synth import synth_main

    out = tmp_path_factory.mktemp("synth") / "data"
    synth_main(str(out), seed=0, preset="smoke")
    for folder in ("edge_a", "edge_b"):
        assert (out / folder / "bounding_box_train").is_dir(), f"synth_main wrote no {folder}"
    return out


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CA, loopback server certificate, and node keys for three edges and an intruder."""
    out = tmp_path_factory.mktemp("certs")
    args = ["bash", str(REPO / "scripts" / "make_dev_certs.sh"), "-n", "edge-a", "-n", "edge-b", "-n", "edge-c", "-n", "rogue",
            str(out)]
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=120)
    return out


def processes_mentioning(marker: str) -> list[int]:
    """PIDs whose environment or command line contains `marker` (a test's unique tmp path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if state != "Z" and marker.encode() in blob:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def no_leftovers(tmp_path: Path):
    """Fail the test if a process it started (FLWR_HOME etc. under tmp_path) is still alive;
    kill those stragglers by PID so later tests start clean."""
    yield tmp_path
    marker = str(tmp_path)
    deadline = time.time() + 15.0  # SuperExecs notice their parent's exit within a few seconds
    left = processes_mentioning(marker)
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = processes_mentioning(marker)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left running after the test: {left}"
