"""`fedureid synth | simulate | standalone`: make data, run the federation or one edge alone."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from fedureid.cli.args import key_values, settings_or_exit, usage_error


def cmd_synth(args: Sequence[str]) -> int:
    own, rest = key_values(args, ("out", "seed", "preset"), "synth")
    if "out" not in own or rest:
        raise usage_error("synth", "takes out=DIR [seed=S] [preset=NAME]")
    from reid_core.data.synth import synth_main

    synth_main(own["out"], seed=int(own.get("seed", 0)), preset=own.get("preset", "demo"))
    print(f"synthetic federation written to {own['out']}")
    return 0


def cmd_simulate(args: Sequence[str]) -> int:
    """Start a private simulation SuperLink, `flwr run` the app, check the run's status."""
    own, rest = key_values(args, ("experiment",), "simulate")
    experiment = own.get("experiment", "demo")
    settings = settings_or_exit([f"experiment={experiment}", *rest])  # refuse bad values first

    from reid_core.data.federation import ensure_federation
    from reid_core.federation.report import markdown_table

    from fedureid.launcher import submit, superlink, write_run_config
    # Absolute paths: Flower's processes do not run in this working directory.
    rest = [*rest, f"run_dir={settings.run_dir}", f"data.root={settings.data_root}"]
    if not any(o.split("=", 1)[0].lstrip("+~") == "train.progress" for o in rest):
        rest.append("train.progress=false")  # edges share the terminal: the server prints a line per client
    if settings.model.weights not in (None, "torchvision"):
        rest.append(f"model.weights={settings.model.weights}")
    if settings.synth_preset:
        ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    work = run_dir / "flower"
    rc_file = write_run_config(work / "run_config.toml", experiment, rest, os.getcwd())
    fed = settings.federation
    fed_cfg = (f"num-supernodes={len(settings.clients)} client-resources-num-cpus={fed.client_cpus} "
               f"client-resources-num-gpus={fed.client_gpus}")
    print(f"FedUReID simulation: experiment={experiment} algorithm={settings.algorithm} "
          f"clients={len(settings.clients)} rounds={settings.rounds} run_dir={run_dir}", flush=True)
    t0 = time.time()
    with superlink(work, simulation=True) as link:
        run_id, status = submit(link, rc_file, fed_cfg, stream=True)
    wall = time.time() - t0
    print(f"\nFlower run {run_id}: {status} in {wall:.1f} s", flush=True)
    if status != "finished:completed":
        print(f"error: the Flower run did not complete ({status}); see {work}/superlink.log", file=sys.stderr)
        return 1
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        print(f"error: {metrics_file} missing", file=sys.stderr)
        return 1
    metrics = json.loads(metrics_file.read_text())
    metrics["wall_s_simulate"] = round(wall, 2)
    metrics_file.write_text(json.dumps(metrics, indent=1))
    print(markdown_table(metrics["final"], f"{experiment} / {settings.algorithm}: final per-client results"))
    print(f"\nwritten: {metrics_file}, {run_dir / 'report.md'}, {run_dir / 'curves.png'}")
    return 0


def cmd_standalone(args: Sequence[str]) -> int:
    from reid_core.federation.in_process import run_standalone

    own, rest = key_values(args, ("experiment", "data"), "standalone")
    if "data" not in own:
        raise usage_error("standalone", "needs data=DIR")
    experiment = own.get("experiment", "demo")
    data = os.path.abspath(own["data"])
    name = os.path.basename(os.path.normpath(data))
    overrides = [f"experiment={experiment}", f"data.root={os.path.dirname(data)}", f"data.clients=[{name}]",
                 "data.synth_preset=null", *rest]
    if not any(o.startswith("run_dir=") for o in rest):
        overrides.append(f"run_dir=runs/standalone_{name}")
    settings = settings_or_exit(overrides)
    from reid_core.federation.report import per_round_table

    metrics = run_standalone(settings, name)
    print(per_round_table(metrics, "rank1"))
    return 0
