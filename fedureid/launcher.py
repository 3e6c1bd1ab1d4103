"""Start Flower's own processes (SuperLink, SuperNodes, SuperExecs) and submit runs with `flwr run`.

Used by `fedureid simulate` and the deployment tests; the `*_command` builders also define
the container commands in docker/ (tests/deploy/test_compose.py compares them). Every
process started here is stopped by the context manager that started it, also on errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from fedureid.processes import _bin, flower_env, free_port, spawn, stop, wait_for_port

APP_DIR = Path(__file__).resolve().parent.parent  # the folder holding pyproject.toml


@dataclass
class SuperLink:
    """A running flower-superlink and the `flwr` connection name that reaches it."""

    port: int
    flwr_home: Path
    proc: subprocess.Popen
    log: Path
    connection: str = "local"
    extra: dict = field(default_factory=dict)
    root_cert: str | None = None  # CA certificate that clients need when TLS is on

    @property
    def env(self) -> dict[str, str]:
        return flower_env(self.flwr_home)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def write_connection(flwr_home: Path, name: str, port: int, root_cert: str | None = None) -> None:
    """$FLWR_HOME/config.toml with one connection (flwr 1.42 keeps them there)."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{name}"', "", f"[superlink.{name}]", f'address = "127.0.0.1:{port}"']
    lines.append(f'root-certificates = "{root_cert}"' if root_cert else "insecure = true")
    (flwr_home / "config.toml").write_text("\n".join(lines) + "\n")


def superlink_command(port: int, database: str, *, host: str = "127.0.0.1", simulation: bool = False,
                      tls: Mapping[str, str] | None = None, node_auth: bool = False,
                      isolation: str = "subprocess") -> list[str]:
    """`flower-superlink` arguments; `tls` maps ca/cert/key to PEM files (None: --insecure).

    No per-run `uv sync` (offline-safe); one port serves the Fleet, Control and Runtime APIs.
    """
    if isolation not in ("subprocess", "process"):
        raise ValueError(f"isolation must be 'subprocess' or 'process', got {isolation!r}")
    cmd = [_bin("flower-superlink"), "--host", host, "--port", str(port),
           "--disable-runtime-dependency-installation", "--database", str(database)]
    if simulation:
        cmd.append("--simulation")
    if tls:
        cmd += ["--ssl-ca-certfile", tls["ca"], "--ssl-certfile", tls["cert"], "--ssl-keyfile", tls["key"]]
    else:
        cmd.append("--insecure")
    if node_auth:
        cmd.append("--enable-supernode-auth")
    if isolation != "subprocess":
        cmd += ["--isolation", isolation]
    return cmd


@contextmanager
def superlink(work_dir: str | os.PathLike, *, simulation: bool = False, tls: dict | None = None,
              node_auth: bool = False, extra_args: Sequence[str] = (),
              isolation: str = "subprocess") -> Iterator[SuperLink]:
    """Run a SuperLink on a free loopback port; offline-safe (no per-run `uv sync`)."""
    work = Path(work_dir)
    flwr_home = work / "flwr_home"
    port = free_port()
    cmd = superlink_command(port, str(work / "superlink.db"), simulation=simulation, tls=tls,
                            node_auth=node_auth, isolation=isolation) + list(extra_args)
    write_connection(flwr_home, "local", port, tls["ca"] if tls else None)
    log = work / "superlink.log"
    proc = spawn(cmd, flower_env(flwr_home), log, cwd=str(work))
    try:
        wait_for_port(port, proc, log=log)
        yield SuperLink(port=port, flwr_home=flwr_home, proc=proc, log=log,
                        root_cert=tls["ca"] if tls else None)
    finally:
        stop(proc)


def flwr(link: SuperLink, *args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a `flwr` CLI command against `link`."""
    res = subprocess.run([_bin("flwr"), *args], env=link.env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"flwr {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def run_status(link: SuperLink, run_id: int) -> str:
    """Status of a run as the SuperLink knows it, e.g. 'finished:completed'."""
    res = flwr(link, "ls", link.connection, "--run-id", str(run_id), "--format", "json")
    data = json.loads(res.stdout)
    runs = data.get("runs", [])
    if not runs:
        raise RuntimeError(f"run {run_id} unknown to the SuperLink: {res.stdout}")
    return str(runs[0]["status"])


def start_run(link: SuperLink, run_config_file: Path, federation_config: str | None = None) -> int:
    """`flwr run` the app and return its run id at once (the run goes on at the SuperLink)."""
    args = [_bin("flwr"), "run", str(APP_DIR), link.connection, "--run-config", str(run_config_file),
            "--format", "json"]
    if federation_config:
        args += ["--federation-config", federation_config]
    res = subprocess.run(args, env=link.env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"flwr run failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return int(json.loads(res.stdout)["run-id"])


def submit(link: SuperLink, run_config_file: Path, federation_config: str | None = None,
           stream: bool = True, log: Path | None = None, timeout: float | None = None) -> tuple[int, str]:
    """`flwr run` the app; wait for the end; return (run_id, final status)."""
    run_id = start_run(link, run_config_file, federation_config)
    deadline = time.time() + (timeout or 10**9)
    follower = None
    if stream:  # show the run's logs while it runs; `flwr log --stream` returns when the run ends
        out = open(log, "ab") if log else None  # None: to our stdout
        try:
            follower = subprocess.Popen([_bin("flwr"), "log", str(run_id), link.connection, "--stream"],
                                        env=link.env, start_new_session=True, stdout=out,
                                        stderr=subprocess.STDOUT)
        finally:
            if out is not None:
                out.close()
    try:
        last_check = 0.0
        while True:
            # Each `flwr ls` is a Python start-up (~1 CPU-s): while the log follower runs,
            # its exit says when to look; ask the SuperLink only now and then.
            following = follower is not None and follower.poll() is None
            if not following or time.time() - last_check >= 30.0:
                status = run_status(link, run_id)
                last_check = time.time()
                if status.startswith("finished"):
                    if following:  # let it print the tail
                        try:
                            follower.wait(timeout=5.0)
                        except subprocess.TimeoutExpired:
                            pass
                    return run_id, status
            if time.time() > deadline:
                flwr(link, "stop", str(run_id), link.connection, check=False)
                return run_id, f"timeout:{status}"
            time.sleep(1.0 if following else 2.0)
    finally:
        if follower is not None:
            stop(follower, grace=3)


def write_run_config(path: Path, experiment: str, overrides: Sequence[str], base_dir: str) -> Path:
    """A TOML file for `flwr run --run-config` (avoids shell quoting of Hydra overrides)."""
    def q(s: str) -> str:
        return json.dumps(s)  # a JSON string is a valid TOML basic string

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"experiment = {q(experiment)}\noverrides = {q(' '.join(_quote(o) for o in overrides))}\n"
                    f"base-dir = {q(base_dir)}\n")
    return path


def _quote(item: str) -> str:
    import shlex

    return shlex.quote(item)


# ---- deployment: SuperNodes, SuperExecs, node registration ------------------------------

def node_config_arg(values: Mapping[str, str | int | float | bool]) -> str:
    """One `--node-config` string; strings become TOML strings, which Flower parses."""
    items = []
    for key, value in values.items():
        if not key or any(c.isspace() or c == "=" for c in key):
            raise ValueError(f"node_config key {key!r} must be non-empty without spaces or '='")
        if isinstance(value, str):
            if '"' in value:
                raise ValueError(f"node_config value for {key!r} must not contain '\"': {value!r}")
            items.append(f'{key}="{value}"')
        else:
            items.append(f"{key}={json.dumps(value)}")
    return " ".join(items)


def supernode_command(superlink_address: str, port: int, node_config: Mapping[str, str | int | float | bool], *,
                      host: str = "127.0.0.1", root_cert: str | None = None, auth_key: str | None = None,
                      isolation: str = "subprocess") -> list[str]:
    """`flower-supernode` arguments; `port` is its own Runtime API (distinct per node on a host).

    SuperNodes never `uv sync` unless `--allow-runtime-dependency-installation` is given.
    """
    if isolation not in ("subprocess", "process"):
        raise ValueError(f"isolation must be 'subprocess' or 'process', got {isolation!r}")
    cmd = [_bin("flower-supernode"), "--superlink", superlink_address, "--host", host, "--port", str(port),
           "--node-config", node_config_arg(node_config)]
    cmd += ["--root-certificates", root_cert] if root_cert else ["--insecure"]
    if auth_key:
        cmd += ["--auth-supernode-private-key", auth_key]
    if isolation != "subprocess":
        cmd += ["--isolation", isolation]
    return cmd


def superexec_command(runtime_api_address: str, root_cert: str | None = None) -> list[str]:
    """`flower-superexec` arguments: runs the ServerApps (SuperLink's API) or ClientApps (a SuperNode's)."""
    cmd = [_bin("flower-superexec"), "--runtime-api-address", runtime_api_address]
    return cmd + (["--root-certificates", root_cert] if root_cert else ["--insecure"])


@dataclass
class SuperNode:
    """A running flower-supernode."""

    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def supernode(link: SuperLink, work_dir: str | os.PathLike, name: str,
              node_config: Mapping[str, str | int | float | bool], *, auth_key: str | None = None,
              isolation: str = "subprocess", wait: bool = True) -> Iterator[SuperNode]:
    """Run one SuperNode against `link` with its own FLWR_HOME, Runtime API port and log.

    With `wait`, block until its Runtime API listens; it may still be connecting to the
    SuperLink then (`list_supernodes` shows it online). Without, return at once (e.g. to
    watch a refused node exit).
    """
    work = Path(work_dir) / name
    port = free_port()
    cmd = supernode_command(link.address, port, node_config, root_cert=link.root_cert, auth_key=auth_key,
                            isolation=isolation)
    log = work / "supernode.log"
    proc = spawn(cmd, flower_env(work / "flwr_home"), log, cwd=str(work.parent))
    try:
        if wait:
            wait_for_port(port, proc, timeout=120.0, log=log)
        yield SuperNode(name=name, port=port, proc=proc, log=log)
    finally:
        stop(proc)


@contextmanager
def superexec(runtime_api_address: str, log: Path, flwr_home: Path,
              root_cert: str | None = None) -> Iterator[subprocess.Popen]:
    """Run a SuperExec (process isolation) for a SuperLink or SuperNode Runtime API."""
    proc = spawn(superexec_command(runtime_api_address, root_cert), flower_env(flwr_home), log,
                 cwd=str(log.parent))
    try:
        yield proc
    finally:
        stop(proc)


def register_supernode(link: SuperLink, public_key: str | os.PathLike, name: str) -> dict:
    """`flwr supernode register` a node's public key (SuperLinks with --enable-supernode-auth)."""
    res = flwr(link, "supernode", "register", str(public_key), link.connection, "--name", name,
               "--format", "json", timeout=60)
    return json.loads(res.stdout)


def list_supernodes(link: SuperLink) -> list[dict]:
    """The SuperLink's nodes as `flwr supernode list --format json` reports them."""
    res = flwr(link, "supernode", "list", link.connection, "--format", "json", timeout=60)
    data = json.loads(res.stdout)
    return list(data.get("nodes", data) if isinstance(data, dict) else data)
