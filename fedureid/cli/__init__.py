"""`fedureid`: the project's command line (argparse subcommands over Hydra `key=value` overrides).

Each command takes its own keys as `key=value`; every other `key=value` is a Hydra
override of `conf/` (e.g. `rounds=3 pu.mu=0.5 data=shared_real`). Bad values are
refused before any training with a message naming the key (exit code 2).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

HYDRA_NOTE = "Any other key=value is a Hydra override of conf/ (e.g. rounds=3 pu.mu=0.5 algorithm=baseline)."


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    keys: str  # one "key=VALUE  meaning" per line
    example: str
    handler: Callable[[Sequence[str]], int]
    hydra: bool = True  # takes Hydra overrides besides its own keys


def _lazy(module: str, func: str) -> Callable[[Sequence[str]], int]:
    """Import the handler on use: `fedureid --help` must not load torch."""
    def call(args: Sequence[str]) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)
    return call


def _lab(func: str) -> Callable[[Sequence[str]], int]:
    """A command of the lab (ablation, benchmarks): it lives beside the package, in a developer checkout."""
    def call(args: Sequence[str]) -> int:
        import importlib

        try:
            module = importlib.import_module("lab.cli")
        except ModuleNotFoundError as err:
            if err.name not in ("lab", "lab.cli"):
                raise
            print("error: this command runs from a developer checkout of the project (its lab/ folder); "
                  "the installed package holds the product only", file=sys.stderr)
            return 2
        return getattr(module, func)(args)
    return call


COMMANDS = (
    Command("synth", "generate the embedded synthetic federation (offline, deterministic per seed)",
            "out=DIR            where to write it (required)\n"
            "seed=S             generator seed (default 0)\n"
            "preset=NAME        demo | smoke (default demo)",
            "fedureid synth out=runs/data/synth_demo seed=0 preset=demo",
            _lazy("fedureid.cli.run", "cmd_synth"), hydra=False),
    Command("simulate", "Flower simulation of the whole federation, offline (`flwr run` on a private SuperLink)",
            "experiment=NAME    smoke | demo | real_cpu | real_cpu3 | paper (default demo)\n"
            "run_dir=DIR        metrics.json, report.md, curves.png and the checkpoint go here",
            "fedureid simulate experiment=real_cpu algorithm=baseline rounds=3 run_dir=runs/base",
            _lazy("fedureid.cli.run", "cmd_simulate")),
    Command("standalone", "the edge learner on one dataset alone, no federation (the paper's standalone row)",
            "data=DIR           a Market-1501-layout folder (required)\n"
            "experiment=NAME    settings to start from (default demo)\n"
            "run_dir=DIR        default runs/standalone_<folder name>",
            "fedureid standalone data=../shared/data/viper experiment=real_cpu rounds=4",
            _lazy("fedureid.cli.run", "cmd_standalone")),
    Command("bench", "speed benchmarks, each printing ratios against a reference measured in the same run",
            "clustering [--sizes N ...] [--dim D]    BUC merge and cc's Jaccard + DBSCAN vs one FAISS k-NN pass\n"
            "                                        and the dense references (--learner buc|cc|all)\n"
            "evaluation [--num-query Q ...]          evaluate_rank vs a per-query loop\n"
            "round --run-dir DIR                     where a simulated round's time went\n"
            "trainer [--sizes 128x64 256x128]        train_epochs vs a bare forward+backward+step loop\n"
            "edge [--sizes 2000 12936 50000]         one edge round's time by phase (scan ... evaluation)\n"
            "gpu-check [--out FILE]                  the GPU check table (scripts/gpu_check.sh runs it)\n"
            "(`fedureid bench KIND --help` lists each benchmark's options)",
            "fedureid bench clustering --sizes 2000 12936",
            _lab("cmd_bench"), hydra=False),
    Command("ablation", "standalone + the federated variants on the same clients, for one or more seeds: tables, curves",
            "experiment=NAME    default demo\n"
            "run_dir=DIR        default runs/ablation_<experiment>; reruns resume what is complete\n"
            "variants=[...]     standalone, baseline, pc, pe, pc_pe, pu, fedureid (default all);\n"
            "                   cc_standalone, cc_baseline, cc_fedureid (learner=cc, PU mu 0.5; `cc` names all three);\n"
            "                   auto_fedureid (learner=auto: cc on edges >= 2,000 images, BUC below)\n"
            "seeds=[0,1,2]      one ablation per seed in run_dir/seed_S, then mean +- std tables\n"
            "examples=K         retrieval example images of the fedureid run (default 3; 0 = none)",
            "fedureid ablation experiment=real_cpu variants=[standalone,baseline,fedureid] seeds=[0,1,2]",
            _lab("cmd_ablation")),
    Command("show", "one query and its top-k gallery matches from a checkpointed model, framed green/red",
            "checkpoint=DIR     RUN_DIR/checkpoint (required)\n"
            "data=DIR           the data root of the run (required)\n"
            "client=NAME        default the first client\n"
            "query=INDEX|FILE   default 0\n"
            "k=10               matches shown\n"
            "model=KIND         personalized | client | global (default personalized)\n"
            "out=FILE.png       default retrieval.png",
            "fedureid show checkpoint=runs/demo/checkpoint data=runs/data/synth_demo client=mall out=mall.png",
            _lazy("fedureid.cli.inference", "cmd_show")),
    Command("rank", "rank a gallery folder for every image of a query folder with a trained model",
            "checkpoint=DIR     RUN_DIR/checkpoint (required)\n"
            "query=DIR          query images (required)\n"
            "gallery=DIR        gallery images (required)\n"
            "client=NAME        whose model (default the first client)\n"
            "k=10               matches written per query\n"
            "model=KIND         personalized | client | global (default personalized)\n"
            "out=FILE.csv       default ranking.csv",
            "fedureid rank checkpoint=runs/demo/checkpoint query=q/ gallery=g/ out=ranking.csv",
            _lazy("fedureid.cli.inference", "cmd_rank")),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedureid", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Federated unsupervised person re-identification (FedUReID) on Flower.",
        epilog="Examples:\n" + "\n".join(f"  {c.example}" for c in COMMANDS)
        + "\n\n`fedureid COMMAND --help` lists a command's keys.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS:
        keys = "keys:\n" + "\n".join(f"  {line}" for line in c.keys.splitlines())
        if c.hydra:
            keys += f"\n\n{HYDRA_NOTE}"
        p = sub.add_parser(c.name, help=c.summary, description=f"{c.summary}\n\n{keys}",
                           epilog=f"example:\n  {c.example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("args", nargs=argparse.REMAINDER, metavar="key=value",
                       help="the keys above" + (" and Hydra overrides" if c.hydra else ""))
        p.set_defaults(handler=c.handler)
    return parser


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (`kill`, `docker stop`) exits like Ctrl-C: the SuperLink and SuperNodes this command
    started are stopped on the way out instead of living on without it."""
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # a command of its own (not a call from Python, whose signals stay the caller's)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(ns.handler(ns.args) or 0)
