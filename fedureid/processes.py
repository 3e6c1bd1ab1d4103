"""Process plumbing for Flower's executables: environment, ports, start and stop in a process group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence


def flower_env(flwr_home: str | os.PathLike) -> dict[str, str]:
    """Environment for Flower processes: private FLWR_HOME, telemetry and update checks off.

    The running interpreter's bin folder goes first on PATH: the SuperLink and SuperNodes
    start `flower-superexec`, `flwr-serverapp` and `flwr-clientapp` by name.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir)])
    env.update({
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray's accelerator-env FutureWarning fills the console of every CPU simulation
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """A Flower executable from the running interpreter's environment."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"'{name}' not found; install flwr (pip install -e .)")
    return found


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0, log: Path | None = None) -> None:
    """Block until something listens on 127.0.0.1:port, or fail with the process log."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}\n{tail}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _proc_stats():
    """(pid, state, parent pid, process group) of every process, read from /proc."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
                yield int(entry.name), state, int(ppid), int(group)
            except (OSError, ValueError):
                continue


def descendants(pid: int) -> list[int]:
    """The live processes below `pid` (children, theirs, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for child, _state, ppid, _group in _proc_stats():
        children.setdefault(ppid, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _groups(pids: Sequence[int]) -> set[int]:
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    return groups - {os.getpgrp()}


def _signal_groups(groups: set[int], sig: int) -> None:
    """Send `sig` to each group that still has a process."""
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass


def running_in(groups: set[int]) -> bool:
    """True while a process that is not a zombie belongs to one of `groups`.

    A zombie keeps its group signalable until its parent reaps it (never, under an init that does not
    reap), yet nothing runs there: waiting for it would only spend the whole grace.
    """
    return any(group in groups and state != "Z" for _pid, state, _ppid, group in _proc_stats())


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process's group and every group below it, then SIGKILL what is left.

    The groups below matter: Flower's SuperExec starts `flwr-simulation` (and Ray under it) in a
    session of its own, which outlives the SuperLink's group and, orphaned, keeps training.
    """
    if proc.poll() is not None:
        return
    groups = _groups([proc.pid, *descendants(proc.pid)])  # before anything dies and its children move to init
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.time() + grace
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    while running_in(groups) and time.time() < deadline:
        time.sleep(0.2)
    _signal_groups(groups, signal.SIGKILL)
    proc.wait(timeout=grace)


def spawn(cmd: Sequence[str], env: dict[str, str], log: Path, cwd: str | None = None) -> subprocess.Popen:
    """Start a process in its own group (so children such as flwr-serverapp stop with it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, start_new_session=True)
