#!/usr/bin/env python3
"""`make compose-check`: the Docker Compose cluster end to end on this host, then torn down.

Builds the images (Flower's are pulled where they can be, else stand-ins are built under
their names from a Debian root made with debootstrap: docker/standin/Dockerfile), starts the
SuperLink, the ServerApp SuperExec and 3 edges with TLS and SuperNode authentication on the
host network (docker/compose.host.yml: all traffic on the loopback), registers the edges'
keys, submits `experiment=smoke` for 3 rounds, kills edge-a's SuperNode during round 2 and
starts it again, waits for `finished:completed`, checks metrics.json, the checkpoint and
edge-a's continued clustering, and prints one table (docs/deployment.md holds one).

    .venv/bin/python scripts/compose_check.py [--ca-bundle FILE] [--torch-index URL] [--gpu]

Exit 0: every check passed; 1: a check failed (the container and its last log lines are
named); 2: no Docker engine or compose here (how to get one is printed). Whatever it
started is taken down (`down -v`), also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compose_images import (APP_IMAGE, FLWR_VERSION, STANDINS, CheckFailed, app_image, flower_images,  # noqa: E402
                            image_size, sh)
from fedureid.launcher import SuperLink, flwr, register_supernode, run_status, write_connection  # noqa: E402
EDGES = ("edge-a", "edge-b", "edge-c")
KILLED = "edge-a"
PROJECT = "fedureid-check"
FILES = ("compose.yml", "compose.host.yml", "compose.tls.yml")
ENGINE_HELP = """no Docker engine answers here. On a Debian host, as root:
  apt-get update && apt-get install -y docker.io docker-compose debootstrap
  dockerd > /var/log/dockerd.log 2>&1 &      # or: systemctl start docker
then run `make compose-check` again."""


def compose_command() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0:
            return cmd
    return None


# ---- the cluster ----------------------------------------------------------------------------
class Cluster:
    def __init__(self, out: Path, compose: list[str]) -> None:
        self.out = out
        self.compose = [*compose, "-p", PROJECT, *[a for f in FILES for a in ("-f", str(REPO / "docker" / f))]]
        self.env = {**os.environ, "DEPLOY_DIR": str(out), "CERTS_DIR": str(out / "certs"),
                    **{f"EDGE_{e[-1].upper()}_DATA": str(out / "data" / e.replace("-", "_")) for e in EDGES}}
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return sh(*self.compose, *args, check=check, timeout=timeout, env=self.env, quiet=True)

    def logs(self, service: str, lines: int = 30) -> str:
        return self.run("logs", "--no-color", "--tail", str(lines), service, check=False).stdout

    def watch_memory(self) -> threading.Thread:
        """Peak memory per container, sampled every 2 s until `down`."""
        def loop() -> None:
            while not self._stop.is_set():
                res = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                                     capture_output=True, text=True)
                for line in res.stdout.splitlines():
                    name, _, usage = line.partition(" ")
                    if name.startswith(PROJECT):  # a container that is starting shows as "--"
                        self.peak[name] = max(self.peak.get(name, 0.0), _mib(usage.split("/")[0]))
                self._stop.wait(2.0)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def down(self) -> None:
        self._stop.set()
        self.run("down", "-v", "--remove-orphans", check=False, timeout=300)


def _mib(text: str) -> float:
    text = text.strip()
    for unit, factor in (("GiB", 1024.0), ("MiB", 1.0), ("KiB", 1 / 1024), ("B", 1 / 1024 / 1024)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return 0.0


def prepare(out: Path) -> None:
    """Data of 3 edges, certificates naming `superlink`, node keys, folders owned by the containers' uid."""
    if out.exists():
        shutil.rmtree(out)
    (out / "superlink").mkdir(parents=True)
    (out / "server").mkdir()
    for e in EDGES:
        (out / e.replace("-", "_") / "state").mkdir(parents=True)
    sh(sys.executable, "-m", "fedureid.cli", "synth", f"out={out / 'data'}", "preset=smoke", quiet=True)
    sh("bash", str(REPO / "scripts" / "make_dev_certs.sh"), *[a for e in EDGES for a in ("-n", e)],
       str(out / "certs"), "superlink", quiet=True)
    sh("chown", "-R", "49999:49999", str(out))


def wait_for(what: str, ok, timeout: float, every: float = 2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def checkpoint_round(out: Path) -> int:
    meta = out / "server" / "smoke" / "checkpoint" / "meta.json"
    try:
        return int(json.loads(meta.read_text())["round"])
    except (OSError, ValueError, KeyError):
        return -1


def node_status(link: SuperLink, node_id: str) -> str:
    res = flwr(link, "supernode", "list", link.connection, "--format", "json", check=False, timeout=60)
    try:
        nodes = json.loads(res.stdout).get("nodes", [])
    except ValueError:
        return ""
    return next((str(n.get("status")) for n in nodes if str(n.get("node-id")) == node_id), "")


def exercise(cluster: Cluster, link: SuperLink, out: Path, epochs: int, rounds: int, killed_id: str) -> dict:
    """Submit the run, kill and restart one edge in round 2, wait for the end; return what was seen.

    A killed SuperNode cannot say goodbye: the SuperLink holds it online until it misses two
    heartbeats (up to 60 s) and refuses its key until then (exit 305). So it is started again
    once the SuperLink reports it offline; `epochs` keeps round 2 going past that.
    """
    overrides = (f"rounds={rounds} run_dir=/app/runs/smoke data.root=/app/data data.synth_preset=null "
                 f"data.clients=[edge_a,edge_b,edge_c] pe.rule=none train.epochs={epochs} federation.min_clients=2")
    res = flwr(link, "run", str(REPO), link.connection, "--format", "json", "--run-config",
               f"experiment='smoke' overrides='{overrides}'", timeout=300)
    run_id = int(json.loads(res.stdout)["run-id"])
    t0 = time.time()
    wait_for("round 1 to finish", lambda: checkpoint_round(out) >= 1, timeout=900)
    time.sleep(2.0)  # round 2's training has started on every edge
    killed_at = time.time() - t0
    cluster.run("kill", f"supernode-{KILLED}")
    wait_for(f"the SuperLink to see {KILLED} offline", lambda: node_status(link, killed_id) == "offline",
             timeout=180, every=3.0)
    offline_at = time.time() - t0
    cluster.run("start", f"supernode-{KILLED}")
    status = wait_for("the run to finish", lambda: (s := run_status(link, run_id)).startswith("finished") and s,
                      timeout=1800, every=5.0)
    return {"run_id": run_id, "status": status, "wall_s": time.time() - t0, "killed_at_s": killed_at,
            "offline_at_s": offline_at}


def verify(out: Path, rounds: int) -> dict:
    metrics = json.loads((out / "server" / "smoke" / "metrics.json").read_text())
    took_part = {e: [r["round"] for r in metrics["rounds"] if "num_examples" in r["clients"].get(e, {})]
                 for e in EDGES}
    problems = []
    if checkpoint_round(out) != rounds:
        problems.append(f"checkpoint after round {checkpoint_round(out)}, expected {rounds}")
    for e in EDGES:
        expected = [r for r in range(1, rounds + 1) if not (e == KILLED and r == 2)]
        if not set(expected) <= set(took_part[e]):
            problems.append(f"{e} aggregated in rounds {took_part[e]}, expected at least {expected}")
    by_round = {r["round"]: r["clients"] for r in metrics["rounds"]}
    first, last = by_round[1].get(KILLED, {}), by_round[rounds].get(KILLED, {})
    # continued: the last round trains on the clusters it had made, not on singletons again
    if not first or not last or last.get("clusters-trained", -1) >= first.get("num_examples", 0):
        problems.append(f"{KILLED} did not continue its clustering: round 1 {first.get('clusters')} clusters, "
                        f"round {rounds} trained on {last.get('clusters-trained')}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return {"took_part": took_part, "round_wall_s": {r["round"]: r.get("wall_s") for r in metrics["rounds"]},
            "clusters": {r: by_round[r].get(KILLED, {}).get("clusters") for r in by_round}}


def table(images: dict, builds: dict, flower: str, seen: dict, checked: dict, peak: dict) -> str:
    lines = ["| what | value |", "|---|---|", f"| Flower images | {flower} |"]
    lines += [f"| image {tag} | {size / 1e9:.2f} GB |" for tag, size in images.items() if size]
    lines += [f"| build {what} | {sec:.0f} s |" for what, sec in builds.items()]
    lines += [f"| run | {seen['status']} in {seen['wall_s']:.0f} s ({KILLED}'s SuperNode killed at "
              f"{seen['killed_at_s']:.0f} s, offline for the SuperLink at {seen['offline_at_s']:.0f} s, "
              "started again then) |"]
    lines += [f"| round {r} | {w:.0f} s |" for r, w in checked["round_wall_s"].items() if w is not None]
    lines += [f"| {e} aggregated in rounds | {', '.join(map(str, rs))} |" for e, rs in checked["took_part"].items()]
    lines += [f"| {KILLED} clusters by round | {', '.join(f'{r}: {c}' for r, c in checked['clusters'].items())} |"]
    lines += [f"| peak memory {name} | {mib:.0f} MiB |" for name, mib in sorted(peak.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "runs" / "compose-check"), help="work folder (replaced)")
    parser.add_argument("--ca-bundle", default=os.environ.get("PIP_CERT"),
                        help="certificate authorities pip must trust inside the builds, e.g. a network's "
                             "TLS-intercepting proxy's (default: $PIP_CERT)")
    parser.add_argument("--torch-index", default=os.environ.get("TORCH_INDEX"),
                        help="where the image's pip finds torch (default: the Dockerfile's CPU index)")
    parser.add_argument("--gpu", action="store_true", help="also build the GPU edge image and report its size")
    parser.add_argument("--cold", action="store_true", help="remove the app image and the build cache first")
    parser.add_argument("--epochs", type=int, default=400,
                        help="local epochs of rounds 2-3: round 2 must outlast the killed edge's return")
    args = parser.parse_args(argv)
    compose = compose_command()
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print(f"error: {ENGINE_HELP}", file=sys.stderr)
        return 2
    if compose is None:
        print("error: neither `docker compose` nor `docker-compose` answers: apt-get install -y docker-compose",
              file=sys.stderr)
        return 2
    os.chdir(REPO)
    out = Path(args.out).resolve()
    cluster = Cluster(out, compose)
    t_start = time.time()
    failed_service = None
    try:
        flower = flower_images(args.ca_bundle)
        # Images on the stand-ins trust the bundle already; Flower's own take it as an argument (<= 128 KiB)
        ca_args = []
        if args.ca_bundle and flower != STANDINS:
            pem = Path(args.ca_bundle).read_text()
            if len(pem) > 120_000:
                raise CheckFailed(f"--ca-bundle {args.ca_bundle} is {len(pem)} bytes: a build argument holds at "
                                  "most 128 KiB; give the proxy's CA certificate alone")
            ca_args = ["--build-arg", f"PIP_CA_BUNDLE={pem}"]
        if args.cold:  # no layer of the app image left to reuse: the build a new host does
            sh("docker", "image", "rm", "-f", APP_IMAGE, check=False, quiet=True)
            sh("docker", "builder", "prune", "-af", check=False, quiet=True)
            sh("docker", "image", "prune", "-f", check=False, quiet=True)  # the classic builder's cache: old layers
        first = "app image, cold" if args.cold or not image_size(APP_IMAGE) else "app image, first (cache present)"
        builds = {first: app_image(APP_IMAGE, ca_args, args.torch_index)}
        builds["app image, warm"] = app_image(APP_IMAGE, ca_args, args.torch_index)
        images = {t: image_size(t) for t in (f"flwr/superlink:{FLWR_VERSION}", f"flwr/supernode:{FLWR_VERSION}",
                                             f"flwr/superexec:{FLWR_VERSION}", APP_IMAGE)}
        if args.gpu:
            builds["GPU app image"] = app_image(f"{APP_IMAGE}-gpu", ca_args, "https://pypi.org/simple", gpu=True)
            images[f"{APP_IMAGE}-gpu"] = image_size(f"{APP_IMAGE}-gpu")
        prepare(out)
        cluster.run("down", "-v", "--remove-orphans", check=False)
        cluster.watch_memory()
        failed_service = "superlink"
        cluster.run("up", "-d", "--no-build", "superlink")
        link = SuperLink(port=8000, flwr_home=out / "flwr_home", proc=None, log=out / "superlink.log",
                         connection="check", root_cert=str(out / "certs" / "ca.crt"))
        write_connection(link.flwr_home, link.connection, 8000, link.root_cert)
        wait_for("the SuperLink", lambda: flwr(link, "supernode", "list", "check", check=False,
                                               timeout=30).returncode == 0, timeout=120)
        node_ids = {e: str(register_supernode(link, out / "certs" / "nodes" / f"{e}.pub", e).get("node-id"))
                    for e in EDGES}
        failed_service = None
        cluster.run("up", "-d", "--no-build")
        seen = exercise(cluster, link, out, args.epochs, rounds=3, killed_id=node_ids[KILLED])
        if seen["status"] != "finished:completed":
            failed_service = "superexec-serverapp"
            raise CheckFailed(f"run {seen['run_id']} ended {seen['status']}")
        checked = verify(out, rounds=3)
        report = table(images, builds, flower, seen, checked, cluster.peak)
        (out / "compose_check.md").write_text(report + "\n")
        print(f"\n{report}\n\ncompose check passed in {time.time() - t_start:.0f} s; table: {out / 'compose_check.md'}")
        return 0
    except (CheckFailed, subprocess.TimeoutExpired, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        for service in ([failed_service] if failed_service else
                        ["superlink", "superexec-serverapp", *[f"supernode-{e}" for e in EDGES],
                         *[f"superexec-clientapp-{e}" for e in EDGES]]):
            print(f"--- last lines of {service} ---\n{cluster.logs(service, 15)}", file=sys.stderr)
        return 1
    finally:
        cluster.down()


if __name__ == "__main__":
    raise SystemExit(main())
