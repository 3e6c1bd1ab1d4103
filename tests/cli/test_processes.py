"""fedureid.processes.stop: what a launched Flower process started goes with it, in whatever session."""

from __future__ import annotations

import os
import subprocess
import time

from fedureid.processes import descendants, running_in, stop


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_reaches_a_child_that_started_its_own_session():
    # as Flower's SuperExec starts flwr-simulation (and Ray under it): a session of its own
    parent = subprocess.Popen(["bash", "-c", "setsid sleep 120 & sleep 120"], start_new_session=True)
    try:
        deadline = time.time() + 10
        while len(descendants(parent.pid)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        below = descendants(parent.pid)
        assert len(below) == 2 and len({os.getpgid(p) for p in below}) == 2, below  # two groups below
        stop(parent, grace=5)
        time.sleep(0.2)
        assert not [pid for pid in below if _alive(pid)]
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(parent.pid)], check=False)


def test_a_group_of_zombies_is_not_running():
    zombie = subprocess.Popen(["true"], start_new_session=True)  # never waited for: a zombie once it exits
    live = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        deadline = time.time() + 10
        while running_in({zombie.pid}) and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(zombie.pid, 0)  # still signalable: the reason not to ask killpg whether it runs
        assert not running_in({zombie.pid})
        assert running_in({live.pid}) and running_in({zombie.pid, live.pid})
    finally:
        live.kill()
        live.wait()
        zombie.wait()
