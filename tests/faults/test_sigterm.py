"""`kill` (SIGTERM) on a running `fedureid simulate` or `fedureid ablation` stops the Flower
processes it started too."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from federations import kill_processes_mentioning, processes_mentioning


def _command_lines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return lines


@pytest.mark.slow
@pytest.mark.timeout(600, method="signal")
@pytest.mark.parametrize("command", [["simulate"], ["ablation", "variants=[baseline]", "examples=0"]])
def test_sigterm_leaves_no_flower_process_behind(smoke_root: Path, tmp_path: Path, command: list[str]):
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "fedureid.cli", *command, "experiment=smoke", f"run_dir={tmp_path / 'run'}",
           f"data.root={smoke_root}", "data.synth_preset=null", "rounds=50"]
    with open(tmp_path / "cli.log", "wb") as out:
        cli = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        # flwr-simulation runs in a session of its own under the SuperExec: it must stop too
        while not any("flwr-simulation" in c for c in _command_lines(processes_mentioning(str(tmp_path)))):
            assert cli.poll() is None, (tmp_path / "cli.log").read_text()[-3000:]
            assert time.time() < deadline, "no simulation started"
            time.sleep(0.5)
        time.sleep(3)  # the run is under way
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=120) == 128 + signal.SIGTERM
        time.sleep(2)
        left = _command_lines(processes_mentioning(str(tmp_path)))
        assert not left, f"still running after the CLI exited: {left}"
    finally:
        kill_processes_mentioning(str(tmp_path))
        if cli.poll() is None:
            cli.kill()
