"""The lab's commands (`fedureid ablation`, `fedureid bench`): a developer checkout only, never the product."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from fedureid.cli.args import key_values, settings_or_exit, usage_error


def _subprocess_runner(args: Sequence[str], log_file: Path) -> int:
    """Run one `fedureid` command in a fresh process; output goes to `log_file`."""
    import subprocess

    print(f"  $ fedureid {' '.join(args)}   (log: {log_file})", flush=True)
    with open(log_file, "a") as log:
        child = subprocess.Popen([sys.executable, "-m", "fedureid.cli", *args], stdout=log, stderr=subprocess.STDOUT)
        try:
            return child.wait()
        except BaseException:  # stopped (SIGTERM, Ctrl-C): let the run stop what it started, then make sure
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise


def _retrieval_examples(run_dir: Path, data_root: str, examples: int) -> None:
    """Render the fedureid run's retrieval examples and link them from ablation.md."""
    from reid_core.inference.view import render_retrieval_examples

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

    from lab.ablation import AblationPlan, parse_variants, run_ablation, settings_lines
    from lab.ablation_report import model_nbytes
    from lab.ablation_seeds import parse_seeds, seed_plan, write_seed_summary
    from reid_core.runtime.arrays import model_arrays
    from reid_core.models import build_model

    own, shared = key_values(args, ("experiment", "run_dir", "variants", "examples", "seeds"), "ablation")
    experiment = own.get("experiment", "demo")
    if any(o.split("=", 1)[0].lstrip("+~") in ("algorithm", "learner") for o in shared):
        raise SystemExit("error: ablation sets algorithm and learner per variant; use variants=[...] instead "
                         "(the cc_* variants run learner=cc)")
    if "seeds" in own and any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in shared):
        raise SystemExit("error: ablation: give either seed=S or seeds=[...], not both")
    run_dir = Path(own.get("run_dir", f"runs/ablation_{experiment}")).resolve()
    settings = settings_or_exit([f"experiment={experiment}", *shared, f"run_dir={run_dir}"])
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
        write_seed_summary(run_dir, per_seed, plan.clients, settings_lines(plan), failed, rounds=plan.rounds)
    print((run_dir / "ablation.md").read_text())
    lost = [f"{v}" if s is None else f"{v} (seed {s})" for s, vs in failed.items() for v in vs]
    if lost:
        print(f"error: failed or incomplete: {', '.join(lost)}", file=sys.stderr)
        return 1
    return 0


BENCHES = {
    "clustering": "lab.bench.clustering",
    "evaluation": "lab.bench.evaluation",
    "round": "lab.bench.round",
    "trainer": "lab.bench.trainer",
    "edge": "lab.bench.edge",
    "gpu-check": "lab.bench.gpu_check",
}


def cmd_bench(args: Sequence[str]) -> int:
    if not args or args[0] not in BENCHES:
        raise usage_error("bench", f"choose {'|'.join(BENCHES)}")
    import importlib

    bench_main = importlib.import_module(BENCHES[args[0]]).main
    return int(bench_main(list(args[1:])) or 0)
