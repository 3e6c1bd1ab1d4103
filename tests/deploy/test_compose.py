"""docker/: no Docker engine runs here, so check the files themselves. Every container command
must be exactly what `fedureid.launcher` builds for the loopback deployment tests, every
edge must have its own client-name, data and state mounts, and the versions must agree."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from flwr.common.config import parse_config_args

from fedureid.launcher import superexec_command, superlink_command, supernode_command

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
CERTS = "/app/certificates"
TLS = {"ca": f"{CERTS}/ca.crt", "cert": f"{CERTS}/server.pem", "key": f"{CERTS}/server.key"}


def load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def with_defaults(text: str) -> str:
    """Replace ${VAR:-default} by its default, as compose does when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """Container path -> (host source, read-only) of a service's short-syntax volumes."""
    out = {}
    for item in service.get("volumes", []):
        parts = with_defaults(item).split(":")
        out[parts[1]] = (parts[0], len(parts) > 2 and parts[2] == "ro")
    return out


def args(cmd: list[str]) -> list[str]:
    """A launcher command without the executable (the images' entrypoints provide it)."""
    return [str(a) for a in cmd[1:]]


def option(command: list, flag: str) -> str:
    command = [str(c) for c in command]
    assert flag in command, f"{flag} missing in {command}"
    return command[command.index(flag) + 1]


def edges(services: dict) -> list[str]:
    return sorted(name.removeprefix("supernode-") for name in services if name.startswith("supernode-"))


@pytest.fixture(scope="module")
def base() -> dict:
    return load("compose.yml")["services"]


def test_dockerfile_builds_from_pinned_superexec_matching_pyproject():
    text = (DOCKER / "Dockerfile").read_text()
    pin = re.search(r"^ARG FLWR_VERSION=(\S+)$", text, re.M).group(1)
    assert re.search(r"^FROM flwr/superexec:\$\{FLWR_VERSION\}$", text, re.M)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    flwr_dep = next(d for d in deps if d.startswith("flwr"))
    assert flwr_dep.endswith(f"=={pin}"), (flwr_dep, pin)
    # The image drops the simulation extra (Ray) with sed and keeps dp (the accountant); that needs the exact spelling.
    assert 's/"flwr\\[simulation,dp\\]==/"flwr[dp]==/' in text
    assert f'"flwr[simulation,dp]=={pin}"' in (REPO / "pyproject.toml").read_text()
    assert importlib.metadata.version("flwr") == pin  # the loopback tests exercise this version
    assert re.search(r"pip install .*\s\.(\s|$)", text), "the image must pip install this package"
    assert not re.search(r"^USER\s", text, re.M), "keep the base image's user app (uid 49999)"


def test_compose_layout_and_pinned_images(base):
    assert {"superlink", "superexec-serverapp"} <= set(base)
    assert len(edges(base)) >= 2
    for edge in edges(base):
        assert f"superexec-clientapp-{edge}" in base, edge
    for name, svc in base.items():
        assert "user" not in svc, f"{name}: containers run as the images' uid 49999"
        env = svc.get("environment", {})
        assert env.get("FLWR_TELEMETRY_ENABLED") == "0", f"{name}: telemetry must be off"
        image = with_defaults(svc["image"])
        if image.startswith("flwr/"):
            assert image.endswith(":" + importlib.metadata.version("flwr")), image
        else:
            assert svc["build"]["dockerfile"] == "docker/Dockerfile", name


def test_superlink_and_serverapp_commands_are_the_loopback_ones(base):
    link = base["superlink"]
    db = option(link["command"], "--database")
    assert link["command"] == args(superlink_command(8000, db, host="0.0.0.0", isolation="process"))
    assert str(Path(db).parent) in mounts(link), "the SuperLink state must be on a mount"
    server = base["superexec-serverapp"]
    assert server["command"] == args(superexec_command("superlink:8000"))
    assert "/app/runs" in mounts(server), "run_dir (metrics, checkpoints) must be on a mount"


def test_each_edge_has_own_name_port_data_and_state(base):
    names, ports, data_sources, state_sources = set(), set(), set(), set()
    for edge in edges(base):
        node = base[f"supernode-{edge}"]
        config = parse_config_args([option(node["command"], "--node-config")])
        assert set(config) == {"client-name", "data-dir", "state-dir"}, config
        port = int(option(node["command"], "--port"))
        expected = supernode_command("superlink:8000", port, config, host="0.0.0.0", isolation="process")
        assert node["command"] == args(expected), edge
        executor = base[f"superexec-clientapp-{edge}"]
        assert executor["command"] == args(superexec_command(f"supernode-{edge}:{port}"))
        # The ClientApp runs in the executor container: the node config's paths are mounted there.
        m = mounts(executor)
        assert config["data-dir"] in m and m[config["data-dir"]][1], f"{edge}: data-dir not mounted read-only"
        assert config["state-dir"] in m and not m[config["state-dir"]][1], f"{edge}: state-dir not writable"
        names.add(config["client-name"])
        ports.add(port)
        data_sources.add(m[config["data-dir"]][0])
        state_sources.add(m[config["state-dir"]][0])
    n = len(edges(base))
    assert len(names) == len(ports) == len(data_sources) == len(state_sources) == n


def test_tls_override_uses_certificates_and_node_auth(base):
    tls = load("compose.tls.yml")
    services, secrets = tls["services"], tls["secrets"]

    def secret_targets(svc: dict) -> dict[str, str]:
        return {s["target"]: s["source"] for s in svc["secrets"]}

    link = services["superlink"]
    db = option(base["superlink"]["command"], "--database")
    assert link["command"] == args(superlink_command(8000, db, host="0.0.0.0", tls=TLS, node_auth=True,
                                                     isolation="process"))
    assert set(TLS.values()) <= set(secret_targets(link))
    server = services["superexec-serverapp"]
    assert server["command"] == args(superexec_command("superlink:8000", root_cert=TLS["ca"]))
    assert TLS["ca"] in secret_targets(server)
    key_sources = set()
    for edge in edges(base):
        node = services[f"supernode-{edge}"]
        config = parse_config_args([option(node["command"], "--node-config")])
        plain = parse_config_args([option(base[f"supernode-{edge}"]["command"], "--node-config")])
        assert config == plain, f"{edge}: TLS must not change the node config"
        key = option(node["command"], "--auth-supernode-private-key")
        port = int(option(node["command"], "--port"))
        expected = supernode_command("superlink:8000", port, config, host="0.0.0.0", root_cert=TLS["ca"],
                                     auth_key=key, isolation="process")
        assert node["command"] == args(expected), edge
        targets = secret_targets(node)
        assert TLS["ca"] in targets and key in targets, edge
        key_sources.add(with_defaults(secrets[targets[key]]["file"]))
    assert len(key_sources) == len(edges(base)), "each edge needs its own key"
    for source in secrets.values():
        assert with_defaults(source["file"]).startswith("../"), "secrets live outside docker/ (not committed)"


def test_gpu_override_reserves_a_gpu_per_edge_only(base):
    gpu = load("compose.gpu.yml")["services"]
    assert set(gpu) == {f"superexec-clientapp-{e}" for e in edges(base)}
    for name, svc in gpu.items():
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"], name
        assert str(svc["build"]["args"]["GPU_FAISS"]) == "1", name
        assert with_defaults(svc["image"]) != with_defaults(base[name]["image"]), "GPU image needs its own tag"


def test_dockerignore_keeps_the_venv_out_of_the_build_context():
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert lines.count("*") == 1, "allow-list: exclude everything, then re-include"
    for needed in ("pyproject.toml", "README.md", "reid_core/", "server_app/", "client_app/", "fedureid/", "conf/"):
        assert f"!{needed}" in lines, needed
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copy_lines = re.findall(r"^COPY (.+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert copy_lines, "no COPY lines found"
    for line in copy_lines:
        sources = [w for w in line.split() if not w.startswith("--")][:-1]
        for src in sources:
            assert src.rstrip("/") in allowed, f"COPY {src} is excluded from the build context"
