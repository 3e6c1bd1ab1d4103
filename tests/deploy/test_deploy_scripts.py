"""scripts/make_dev_certs.sh, scripts/install_gpu_faiss.sh --check, and the launcher's
command builders (fast; no Flower process is started)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.common.config import parse_config_args

from fedureid.launcher import flower_env, node_config_arg, supernode_command

REPO = Path(__file__).resolve().parents[2]


def run(*cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, env=env)


def test_dev_certs_cover_loopback_and_given_hosts(tmp_path):
    res = run("bash", str(REPO / "scripts/make_dev_certs.sh"), "-n", "edge-a", str(tmp_path), "superlink",
              "10.1.2.3")
    assert res.returncode == 0, res.stderr
    sans = run("openssl", "x509", "-in", str(tmp_path / "server.pem"), "-noout", "-ext", "subjectAltName").stdout
    for expected in ("IP Address:127.0.0.1", "DNS:localhost", "DNS:superlink", "IP Address:10.1.2.3"):
        assert expected in sans, sans
    verify = run("openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "server.pem"))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    pub = (tmp_path / "nodes" / "edge-a.pub").read_text()
    assert pub.startswith("ecdsa-sha2-nistp384 "), pub  # what `flwr supernode register` accepts
    assert (tmp_path / "nodes" / "edge-a").stat().st_mode & 0o077 == 0, "private key readable by others"
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0


def test_dev_certs_keep_the_ca_and_node_keys_on_rerun(tmp_path):
    script = str(REPO / "scripts/make_dev_certs.sh")
    assert run("bash", script, "-n", "edge-a", str(tmp_path)).returncode == 0
    ca, key = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "nodes" / "edge-a").read_bytes()
    assert run("bash", script, "-n", "edge-a", "-n", "edge-b", str(tmp_path), "newhost").returncode == 0
    assert (tmp_path / "ca.crt").read_bytes() == ca, "a rerun must not invalidate certificates edges hold"
    assert (tmp_path / "nodes" / "edge-a").read_bytes() == key
    assert (tmp_path / "nodes" / "edge-b.pub").exists()
    assert run("openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "server.pem")).returncode == 0


def test_dev_certs_refuse_bad_usage(tmp_path):
    script = str(REPO / "scripts/make_dev_certs.sh")
    assert run("bash", script).returncode == 2
    bad = run("bash", script, "-n", "../evil", str(tmp_path))
    assert bad.returncode == 2 and "node name" in bad.stderr


def fake_distribution(root: Path, name: str, version: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def faiss_check(extra_path: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return run("bash", str(REPO / "scripts/install_gpu_faiss.sh"), "--check", "--python", sys.executable, env=env)


def test_faiss_check_passes_with_exactly_one_distribution():
    res = faiss_check(None)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("faiss-") == 1, res.stdout


def test_faiss_check_fails_when_two_distributions_share_the_folder(tmp_path):
    fake_distribution(tmp_path, "faiss-gpu-cu12", "1.12.0")
    res = faiss_check(tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "faiss-gpu-cu12==1.12.0" in res.stdout and "found 2" in res.stderr


def test_node_config_round_trips_through_flowers_parser():
    config = {"client-name": "edge-a", "data-dir": "/data/my edge", "state-dir": "/state/a", "cams": 3}
    assert parse_config_args([node_config_arg(config)]) == config
    with pytest.raises(ValueError, match="client-name"):
        node_config_arg({"client-name": 'a"b'})
    with pytest.raises(ValueError, match="key"):
        node_config_arg({"data dir": "/x"})


def test_supernode_command_tls_auth_and_isolation_flags():
    cmd = supernode_command("127.0.0.1:8000", 9100, {"client-name": "edge-a"}, root_cert="ca.crt",
                            auth_key="edge-a", isolation="process")
    assert "--insecure" not in cmd
    assert cmd[cmd.index("--root-certificates") + 1] == "ca.crt"
    assert cmd[cmd.index("--auth-supernode-private-key") + 1] == "edge-a"
    assert cmd[cmd.index("--port") + 1] == "9100" and cmd[cmd.index("--isolation") + 1] == "process"
    assert "--insecure" in supernode_command("127.0.0.1:8000", 9100, {})
    with pytest.raises(ValueError, match="isolation"):
        supernode_command("127.0.0.1:8000", 9100, {}, isolation="thread")


def test_flower_env_turns_telemetry_off_and_finds_flower_executables(tmp_path):
    env = flower_env(tmp_path)
    assert env["FLWR_HOME"] == str(tmp_path)
    assert env["FLWR_TELEMETRY_ENABLED"] == "0" and env["FLWR_DISABLE_UPDATE_CHECK"] == "1"
    first = env["PATH"].split(os.pathsep)[0]
    assert (Path(first) / "flower-superexec").exists(), first  # SuperLinks start it by name
