#!/usr/bin/env python3
"""`make soak`: a federation under chaos on the loopback, with real Flower processes.

One SuperLink (`--database`, so it can restart), 16 SuperNodes on tiny synthetic edges (48
training images each), 10 rounds of `experiment=smoke`. A chaos driver SIGKILLs a random
SuperNode (with its SuperExec and ClientApp) every 30 s and starts it again with the same node
config (a new node_id, the same state folder), and once, after half the rounds, SIGKILLs the
SuperLink (with the ServerApp it runs) and starts it again on the same port and database. A run the
SuperLink cannot carry across its restart is submitted again: the ServerApp resumes from its
checkpoint (docs/deployment.md, "Recovery"). The edges share the host's cores through compute
slots. One line per completed round: its time, how many updates it aggregated, the kills so
far, the least resident memory (MB) and open files of the SuperLink and ServerApp while it ran
(sampled each second: see soak_checks.py).

    .venv/bin/python scripts/soak.py [--edges 16] [--rounds 10] [--kill-every 30] [--budget 1500]

Checks (soak_checks.py): the run finishes `finished:completed`; rounds 1..R each recorded
once; every round aggregated at least `min_clients`; no edge's state went backwards; every
file loads; memory and open files do not grow round over round. Exit 0: all passed, 1: a
check failed (named), 2: over budget. Every process it started is stopped, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from fedureid.launcher import (SuperLink, list_supernodes, run_status, start_run,  # noqa: E402
                               superlink_command, supernode_command, write_connection, write_run_config)
from fedureid.processes import flower_env, free_port, spawn, wait_for_port  # noqa: E402
from soak_checks import (Row, check_files, check_growth, check_rounds, descendants, edge_states, floor,  # noqa: E402
                         process_usage, table, went_backwards)


def _sigkill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Cluster:
    """The SuperLink and the SuperNodes, each restartable in place."""

    def __init__(self, work: Path, data: Path, names: list[str]) -> None:
        self.work, self.data, self.names = work, data, names
        self.link = SuperLink(port=free_port(), flwr_home=work / "link" / "flwr_home", proc=None,
                              log=work / "link" / "superlink.log")
        write_connection(self.link.flwr_home, "local", self.link.port)
        self.nodes: dict[str, object] = {}

    def start_link(self) -> None:
        cmd = superlink_command(self.link.port, str(self.work / "link" / "superlink.db"))
        self.link.proc = spawn(cmd, flower_env(self.link.flwr_home), self.link.log, cwd=str(self.work / "link"))
        wait_for_port(self.link.port, self.link.proc, log=self.link.log)

    def start_node(self, name: str) -> None:
        config = {"client-name": name, "data-dir": str(self.data / name),
                  "state-dir": str(self.work / "state" / name),
                  # the edges share this host: as many computing at once as it has cores
                  "compute-slots-dir": str(self.work / "slots"), "compute-slots": os.cpu_count() or 1}
        home = self.work / "nodes" / name
        cmd = supernode_command(self.link.address, free_port(), config)
        # 16 edges share this machine's cores: one compute thread each (OpenMP's spinning threads
        # oversubscribed 16-fold stall every edge)
        env = {**flower_env(home / "flwr_home"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.nodes[name] = spawn(cmd, env, home / "supernode.log", cwd=str(home))

    @staticmethod
    def kill(proc) -> None:
        """SIGKILL a process and all it started (its SuperExec and apps run in sessions of their
        own): no goodbye, as a power cut would."""
        _sigkill([proc.pid, *descendants(proc.pid)])
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        """SIGTERM every process group at once, give them 10 s, then SIGKILL every tree."""
        procs = [p for p in [*self.nodes.values(), self.link.proc] if p is not None]
        trees = [pid for p in procs for pid in [p.pid, *descendants(p.pid)]]
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        _sigkill(trees)
        for p in procs:
            p.wait(timeout=30)


def make_edges(data: Path, count: int) -> list[str]:
    from reid_core.data.synth import ClientSpec, generate_federation

    domains = ("indoor", "outdoor", "station", "night", "office")
    specs = tuple(ClientSpec(f"edge{i:02d}", num_identities=6, num_cameras=2, images_per_id_per_camera=4,
                             num_test_identities=4, num_distractors=2, domain=domains[i % len(domains)])
                  for i in range(count))
    generate_federation(data, seed=0, spec=specs)
    return [s.name for s in specs]


def run_config(work: Path, data: Path, names: list[str], args: argparse.Namespace) -> Path:
    # a phase waits for a killed node until the SuperLink declares it gone (2 missed 30 s heartbeats)
    # or, once min_clients answered, until no edge answered for federation.grace seconds; the edges
    # evaluate after round 0, every k-th round and the last
    overrides = [f"rounds={args.rounds}", f"federation.min_clients={args.min_clients}",
                 f"federation.fraction_train={args.fraction_train}",
                 f"federation.timeout={args.phase_timeout}", f"federation.evaluate_every={args.evaluate_every}",
                 f"federation.grace={args.grace}",
                 "train.first_round_epochs=1",
                 "train.epochs=1", f"run_dir={work / 'run'}", f"data.root={data}", "data.synth_preset=null",
                 f"data.clients=[{','.join(names)}]"]
    return write_run_config(work / "run_config.toml", "smoke", overrides, str(work))


def checkpoint_round(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "checkpoint" / "meta.json").read_text())["round"])
    except (OSError, ValueError, KeyError):
        return 0


def soak(args: argparse.Namespace, work: Path) -> int:
    rng = random.Random(args.seed)
    data, run_dir = work / "data", work / "run"
    names = make_edges(data, args.edges)
    cluster = Cluster(work, data, names)
    rows: list[Row] = []
    states: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    t0 = time.time()
    try:
        cluster.start_link()
        for name in names:
            cluster.start_node(name)
        while sum(n.get("status") == "online" for n in list_supernodes(cluster.link)) < len(names):
            if time.time() - t0 > 180:
                raise TimeoutError("the SuperNodes did not all come online in 180 s")
            time.sleep(2)
        config = run_config(work, data, names, args)
        run_ids = [start_run(cluster.link, config)]
        print(f"soak: {len(names)} edges online in {time.time() - t0:.0f} s; run {run_ids[0]} submitted", flush=True)
        last_round, last_time, next_kill, kills = 0, time.time(), time.time() + args.kill_every, 0
        link_restarted = awaiting_resubmit = False
        samples: list[dict[str, tuple]] = []
        last_status = 0.0
        while True:
            if time.time() - t0 > args.budget:
                print(f"soak: over its budget of {args.budget} s at round {last_round}; stopping", flush=True)
                return 2
            samples.append(process_usage(cluster.link.proc.pid))  # each second: the round's floor
            done = checkpoint_round(run_dir)
            if done > last_round:
                for name, state in edge_states(work / "state").items():
                    states[name].append(state)
                rows.append(Row(done, time.time() - last_time, run_dir, floor(samples), kills))
                print(rows[-1].line(), flush=True)
                last_round, last_time, samples = done, time.time(), []
            if not link_restarted and args.restart_link_after and done >= args.restart_link_after:
                cluster.kill(cluster.link.proc)
                cluster.start_link()
                link_restarted = True
                awaiting_resubmit = True
                print(f"soak: SuperLink restarted after round {done}; run {run_ids[-1]} is "
                      f"'{run_status(cluster.link, run_ids[-1])}'", flush=True)
            if time.time() >= next_kill and kills < args.max_kills and done < args.rounds:
                victim = rng.choice(names)
                cluster.kill(cluster.nodes[victim])
                cluster.start_node(victim)
                kills += 1
                next_kill = time.time() + args.kill_every
            if time.time() - last_status < 15:  # each `flwr ls` is a Python start-up (~1 CPU-s)
                time.sleep(1.0)
                continue
            status, last_status = run_status(cluster.link, run_ids[-1]), time.time()
            if awaiting_resubmit and (args.resubmit or (status.startswith("finished") and status != "finished:completed")):
                print(f"soak: run {run_ids[-1]} is '{status}' after the SuperLink restart", flush=True)
                run_ids.append(start_run(cluster.link, config))
                awaiting_resubmit = False
                print(f"soak: run {run_ids[-1]} submitted: resumes from the checkpoint of round "
                      f"{checkpoint_round(run_dir)}", flush=True)
                continue
            if status.startswith("finished"):
                break
            time.sleep(1.0)
        print(f"soak: run {run_ids[-1]} {status} after {time.time() - t0:.0f} s; {kills} SuperNode kills, "
              f"{len(run_ids)} submission(s)", flush=True)
        print(table(rows))
        problems = [] if status == "finished:completed" else [f"the run ended '{status}'"]
        problems += check_rounds(run_dir, args.rounds, args.min_clients)
        problems += went_backwards(states)
        problems += check_files(run_dir, work / "state")
        problems += check_growth(rows)
        for problem in problems:
            print(f"soak: FAILED: {problem}", flush=True)
        print("soak: passed" if not problems else f"soak: {len(problems)} check(s) failed", flush=True)
        return 1 if problems else 0
    finally:
        cluster.stop_all()


def _unwind(*_) -> None:
    """The first SIGTERM unwinds; later ones (`timeout` forwards its own) must not cut the cleanup short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--min-clients", type=int, default=6, help="federation.min_clients of the run")
    parser.add_argument("--fraction-train", type=float, default=0.5, help="federation.fraction_train of the run: "
                        "the share of the edges online that train a round (every edge evaluates); all 16 "
                        "with --min-clients 8 took 21-23 minutes (docs/deployment.md)")
    parser.add_argument("--kill-every", type=float, default=30.0, help="seconds between SuperNode kills")
    parser.add_argument("--phase-timeout", type=int, default=300, help="federation.timeout: seconds a phase "
                        "waits; short ones leave ClientApps working past it, slowing the next phase")
    parser.add_argument("--grace", type=float, default=20.0, help="federation.grace: quiet seconds after which "
                        "a phase with min_clients answers goes on without the others")
    parser.add_argument("--evaluate-every", type=int, default=10, help="federation.evaluate_every of the run")
    parser.add_argument("--max-kills", type=int, default=200)
    parser.add_argument("--restart-link-after", type=int, default=None, help="round after which the SuperLink "
                        "is restarted (default: half the rounds; 0: never)")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds; the soak stops itself past it")
    parser.add_argument("--resubmit", action="store_true", help="submit again right after the SuperLink restart, "
                        "not waiting for the old run to read as failed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="keep everything here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.restart_link_after is None:
        args.restart_link_after = args.rounds // 2
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    # SIGTERM (a timeout, `kill`) unwinds like Ctrl-C: the finally blocks stop every process started
    signal.signal(signal.SIGTERM, _unwind)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        return soak(args, args.work.resolve())
    with tempfile.TemporaryDirectory(prefix="fedureid-soak-") as tmp:
        return soak(args, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
