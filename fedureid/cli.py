"""`fedureid` command: synth | simulate | standalone | bench | ablation | show | rank.

Arguments are Hydra-style `key=value` overrides; bad values are refused before any
training with a message naming the key (exit code 2).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

USAGE = """usage: fedureid COMMAND [key=value ...]

commands:
  synth       out=DIR [seed=S] [preset=demo|smoke]   generate the synthetic federation
  simulate    [experiment=NAME] [run_dir=DIR] [key=value ...]   Flower simulation, offline
  standalone  data=DIR [run_dir=DIR] [experiment=NAME] [key=value ...]   BUC on one dataset alone
  bench       clustering|evaluation|round [options]    speed benchmarks (ratios in one run)
  ablation    experiment=NAME run_dir=DIR [variants=[baseline,pe,...]] [seeds=[0,1,2]] [examples=3] [key=value ...]
              standalone + baseline/pc/pe/pc_pe/pu/fedureid on the same clients: tables, curves
              (seeds: one ablation per seed in run_dir/seed_S, then mean +- std tables)
  show        checkpoint=RUN_DIR/checkpoint data=DIR [client=NAME] [query=INDEX|FILE] [k=10]
              [model=personalized|client|global] out=FILE.png   one query's top-k, framed green/red
  rank        checkpoint=... query=QUERY_DIR gallery=GALLERY_DIR [client=NAME] [k=10]
              [model=personalized|client|global] out=ranking.csv   rank a gallery with a trained model
"""


def _split(args: Sequence[str], own_keys: Sequence[str] = ("experiment",)) -> tuple[dict[str, str], list[str]]:
    """Pull the command's own keys out of the Hydra overrides (the rest go to Hydra)."""
    own, rest = {}, []
    for a in args:
        if "=" not in a:
            raise SystemExit(f"error: expected key=value, got '{a}'\n\n{USAGE}")
        key, value = a.split("=", 1)
        if key in own_keys:
            own[key] = value
        else:
            rest.append(a)
    return own, rest


def _settings_or_exit(overrides: list[str]):
    from reid_core.config.settings import ConfigError, load_settings

    try:
        return load_settings(overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


def cmd_synth(args: Sequence[str]) -> int:
    own, rest = _split(args, ("out", "seed", "preset"))
    if "out" not in own or rest:
        raise SystemExit(f"error: synth takes out=DIR [seed=S] [preset=NAME]\n\n{USAGE}")
    from reid_core.data.synth import synth_main

    synth_main(own["out"], seed=int(own.get("seed", 0)), preset=own.get("preset", "demo"))
    print(f"synthetic federation written to {own['out']}")
    return 0


def cmd_simulate(args: Sequence[str]) -> int:
    """Start a private simulation SuperLink, `flwr run` the app, check the run's status."""
    own, rest = _split(args)
    experiment = own.get("experiment", "demo")
    settings = _settings_or_exit([f"experiment={experiment}", *rest])  # refuse bad values first

    from reid_core.data.federation import ensure_federation
    from reid_core.experiments.report import markdown_table

    from fedureid.launcher import submit, superlink, write_run_config
    # Absolute paths: Flower's processes do not run in this working directory.
    rest = [*rest, f"run_dir={settings.run_dir}", f"data.root={settings.data_root}"]
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
    from reid_core.experiments.standalone import run_standalone

    own, rest = _split(args, ("experiment", "data"))
    if "data" not in own:
        raise SystemExit(f"error: standalone needs data=DIR\n\n{USAGE}")
    experiment = own.get("experiment", "demo")
    data = os.path.abspath(own["data"])
    name = os.path.basename(os.path.normpath(data))
    overrides = [f"experiment={experiment}", f"data.root={os.path.dirname(data)}", f"data.clients=[{name}]",
                 "data.synth_preset=null", *rest]
    if not any(o.startswith("run_dir=") for o in rest):
        overrides.append(f"run_dir=runs/standalone_{name}")
    settings = _settings_or_exit(overrides)
    run_standalone(settings, name)
    return 0


def cmd_bench(args: Sequence[str]) -> int:
    if not args or args[0] not in ("clustering", "evaluation", "round"):
        raise SystemExit(f"error: bench clustering|evaluation|round\n\n{USAGE}")
    if args[0] == "clustering":
        from reid_core.experiments.bench.clustering import main as bench_main
    elif args[0] == "round":
        from reid_core.experiments.bench.round import main as bench_main
    else:
        from reid_core.experiments.bench.evaluation import main as bench_main
    return int(bench_main(list(args[1:])) or 0)


def _key_values(args: Sequence[str], own_keys: Sequence[str], command: str) -> tuple[dict[str, str], list[str]]:
    """Split `key=value` arguments into this command's own keys and the rest (Hydra overrides)."""
    own, rest = {}, []
    for a in args:
        key, sep, value = a.partition("=")
        if not sep:
            raise SystemExit(f"error: {command}: expected key=value, got '{a}'\n\n{USAGE}")
        if key in own_keys:
            own[key] = value
        else:
            rest.append(a)
    return own, rest


def _subprocess_runner(args: Sequence[str], log_file: Path) -> int:
    """Run one `fedureid` command in a fresh process; output goes to `log_file`."""
    import subprocess

    print(f"  $ fedureid {' '.join(args)}   (log: {log_file})", flush=True)
    with open(log_file, "a") as log:
        return subprocess.run([sys.executable, "-m", "fedureid.cli", *args], stdout=log,
                              stderr=subprocess.STDOUT, check=False).returncode


def _retrieval_examples(run_dir: Path, data_root: str, examples: int) -> None:
    """Render the fedureid run's retrieval examples and link them from ablation.md."""
    from reid_core.experiments.view import render_retrieval_examples

    try:
        pngs = render_retrieval_examples(run_dir / "fedureid", data_root, num_queries=examples)
    except (ValueError, OSError) as err:  # the tables are written already; do not lose them
        print(f"warning: retrieval examples not rendered: {err}", file=sys.stderr)
        return
    if pngs:
        with open(run_dir / "ablation.md", "a") as f:
            f.write("\n## Retrieval examples (fedureid, personalised models)\n\n")
            f.write("\n".join(f"![{p.stem}](fedureid/{p.name})" for p in pngs) + "\n")


def cmd_ablation(args: Sequence[str]) -> int:
    """Standalone BUC and the six federated variants on the same clients, for one or more seeds."""
    from dataclasses import replace

    from reid_core.experiments.ablation import AblationPlan, parse_variants, run_ablation, settings_lines
    from reid_core.experiments.ablation_report import model_nbytes
    from reid_core.experiments.ablation_seeds import parse_seeds, seed_plan, write_seed_summary
    from reid_core.runtime.arrays import model_arrays
    from reid_core.models import build_model

    own, shared = _key_values(args, ("experiment", "run_dir", "variants", "examples", "seeds"), "ablation")
    experiment = own.get("experiment", "demo")
    if any(o.split("=", 1)[0].lstrip("+~") == "algorithm" for o in shared):
        raise SystemExit("error: ablation sets algorithm per variant; use variants=[...] instead")
    if "seeds" in own and any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in shared):
        raise SystemExit("error: ablation: give either seed=S or seeds=[...], not both")
    run_dir = Path(own.get("run_dir", f"runs/ablation_{experiment}")).resolve()
    settings = _settings_or_exit([f"experiment={experiment}", *shared, f"run_dir={run_dir}"])
    try:
        variants = parse_variants(own.get("variants", "all"))
        seeds = parse_seeds(own["seeds"]) if "seeds" in own else None
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if settings.synth_preset:  # standalone runs read the folders directly
        from reid_core.data.federation import ensure_federation

        ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)
    # Absolute paths: the variants' Flower processes do not run in this working directory.
    shared = [o for o in shared if not o.startswith(("data.root=", "model.weights="))]
    shared.append(f"data.root={settings.data_root}")
    if settings.model.weights not in (None, "torchvision"):
        shared.append(f"model.weights={settings.model.weights}")
    plan = AblationPlan(run_dir=run_dir, experiment=experiment, overrides=tuple(shared),
                        clients=settings.clients, data_root=settings.data_root, rounds=settings.rounds,
                        variants=variants)
    size = model_nbytes(model_arrays(build_model(replace(settings.model, weights=None))))
    examples = int(own.get("examples", 3))
    print(f"ablation: {', '.join(variants)} on {', '.join(plan.clients)}, {plan.rounds} rounds"
          f"{'' if seeds is None else ', seeds ' + str(list(seeds))} -> {run_dir}", flush=True)
    per_seed, failed = {}, {}
    for seed in (seeds or (None,)):
        this = plan if seed is None else seed_plan(plan, seed)
        summary = run_ablation(this, _subprocess_runner, model_bytes=size)
        per_seed[seed], failed[seed] = summary["results"], summary["failed"]
        first = seed == (seeds[0] if seeds else None)  # examples from one seed are enough
        if examples > 0 and first and "fedureid" in summary["results"]:
            _retrieval_examples(this.run_dir, settings.data_root, examples)
    if seeds is not None:
        write_seed_summary(run_dir, per_seed, plan.clients, settings_lines(plan), failed)
    print((run_dir / "ablation.md").read_text())
    lost = [f"{v}" if s is None else f"{v} (seed {s})" for s, vs in failed.items() for v in vs]
    if lost:
        print(f"error: failed or incomplete: {', '.join(lost)}", file=sys.stderr)
        return 1
    return 0


def _model_kind(own: dict[str, str]) -> str:
    kind = own.get("model", "personalized")
    return "personalized" if kind == "personalised" else kind


def cmd_show(args: Sequence[str]) -> int:
    """Draw one query and its top-k gallery matches from a checkpointed model."""
    from reid_core.experiments.view import show_retrieval

    own, rest = _key_values(args, ("checkpoint", "data", "client", "query", "k", "out", "model"), "show")
    if "checkpoint" not in own or "data" not in own:
        raise SystemExit(f"error: show needs checkpoint=RUN_DIR/checkpoint data=DIR\n\n{USAGE}")
    query: int | str = own.get("query", "0")
    query = int(query) if str(query).lstrip("-").isdigit() else str(query)
    out = own.get("out", "retrieval.png")
    try:
        scores = show_retrieval(own["checkpoint"], own["data"], out, client=own.get("client"), query=query,
                                k=int(own.get("k", 10)), kind=_model_kind(own), extra_overrides=rest)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"rank-1 {scores['rank1']:.1f}  mAP {scores['mAP']:.1f}; written: {out}")
    return 0


def cmd_rank(args: Sequence[str]) -> int:
    """Rank a gallery folder for every image of a query folder with a trained model."""
    from reid_core.experiments.retrieval import rank_folders

    own, rest = _key_values(args, ("checkpoint", "query", "gallery", "client", "k", "out", "model"), "rank")
    missing = [k for k in ("checkpoint", "query", "gallery") if k not in own]
    if missing:
        raise SystemExit(f"error: rank needs {', '.join(k + '=...' for k in missing)}\n\n{USAGE}")
    out = own.get("out", "ranking.csv")
    try:
        counts = rank_folders(own["checkpoint"], own["query"], own["gallery"], out, client=own.get("client"),
                              kind=_model_kind(own), k=int(own.get("k", 10)), extra_overrides=rest)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{counts['queries']} queries x top-{counts['k']} of {counts['gallery']} gallery images "
          f"({counts['skipped']} unreadable skipped) -> {out}")
    return 0


COMMANDS = {"synth": cmd_synth, "simulate": cmd_simulate, "standalone": cmd_standalone, "bench": cmd_bench,
            "ablation": cmd_ablation, "show": cmd_show, "rank": cmd_rank}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'\n\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
