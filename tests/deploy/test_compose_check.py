"""`make compose-check` and the compose files' combinations, as Docker Compose itself reads them."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
OVERRIDES = ("compose.publish.yml", "compose.host.yml", "compose.tls.yml", "compose.gpu.yml")
sys.path.insert(0, str(REPO / "scripts"))


def _compose() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0:
            return cmd
    return None


def _combinations():
    for n in range(len(OVERRIDES) + 1):
        for extra in itertools.combinations(OVERRIDES, n):
            if not {"compose.publish.yml", "compose.host.yml"} <= set(extra):  # one or the other
                yield ("compose.yml", *extra)


@pytest.mark.parametrize("files", list(_combinations()), ids=lambda f: "+".join(x[8:-4] or "base" for x in f))
def test_every_combination_of_the_compose_files_is_valid(files, tmp_path):
    compose = _compose()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")
    args = [a for f in files for a in ("-f", str(DOCKER / f))]
    res = subprocess.run([*compose, "-p", "fedureid-config", *args, "config"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    assert {f"supernode-edge-{x}" for x in "abc"} <= set(services)
    for name, svc in services.items():
        if "compose.host.yml" in files:
            assert svc.get("network_mode") == "host" and not svc.get("ports"), name
            assert "127.0.0.1" in str(svc.get("extra_hosts")), name
        elif "compose.publish.yml" in files and name == "superlink":
            assert "8000" in str(svc["ports"])
        else:
            assert not svc.get("ports"), f"{name}: compose.yml publishes nothing itself"
    text = "\n".join((DOCKER / f).read_text() for f in files)
    assert "/work/" not in text and "/root/" not in text, "no path of one machine in the compose files"


def test_compose_check_without_an_engine_says_how_to_get_one(tmp_path):
    """No `docker` on PATH: exit 2 at once, with the commands that install and start an engine."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "compose_check.py")], capture_output=True, text=True,
                         timeout=60, env=env, cwd=REPO)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "apt-get install -y docker.io docker-compose debootstrap" in res.stderr and "dockerd" in res.stderr


@pytest.mark.docker
def test_compose_check_end_to_end(tmp_path):
    """The whole check (builds the images: minutes cold). Runs where a Docker engine answers."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine answers here (see README, Docker: install and start one)")
    import compose_check

    assert compose_check.main(["--out", str(tmp_path / "check")]) == 0
