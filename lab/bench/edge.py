"""Time one BUC edge round by phase at camera-site sizes.

Run: ``fedureid bench edge [--sizes 2000 12936 50000] [--data-dir DIR] [--arch tiny --size 64x32]``.

Per N it writes N synthetic training images (64x32 PNGs, clustered colours; once:
``--data-dir`` keeps them between runs) and runs two rounds of the real
``BUCLearner`` with ``train.first_round_epochs = train.epochs = 2``. Each round
builds a new learner, as an edge does on every message, so round 1 shows the first
scan and round 2 the cached one (``image_scan.json``). Phases are timed by
wrapping the learner's own calls (nothing is re-implemented here):

- scan: building the learner (reading the folder, checking every image / the cache);
- memory init: features before training + cluster means into the memory;
- training: ``train_epochs``;
- merge features: features after training;
- merge: ``buc_merge``;
- evaluation: ``learner.evaluate`` on 200 query and 200 gallery images;
- other: the rest of the round (model build, diagnostics, saving state).

Default model: ``tiny`` (128-d embedding) at 64x32, batch 32, so N = 50,000
finishes in minutes on two cores; ``--arch``/``--size`` change it.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from reid_core.config.schema import ClusterConfig, EarlyStopConfig, ImageConfig, ModelConfig, TrainConfig
from lab.bench.synth_images import write_market_folder
from lab.bench.trainer import parse_size
from reid_core.learners.base import LearnerConfig

PHASES = ("scan", "memory init", "training", "merge features", "merge", "evaluation", "other")
OUTSIDE_TRAINING_GOAL = 0.30  # the goal: at most 30% of a 2-epoch round at N = 12,936


class PhaseClock:
    """Seconds per phase; `wrap` times every call of a function under a phase name."""

    def __init__(self) -> None:
        self.seconds = {p: 0.0 for p in PHASES}
        self.current_default = "memory init"  # feature passes before training

    def wrap(self, phase: str | Callable[[], str], fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            name = phase() if callable(phase) else phase
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


def shares(seconds: dict[str, float], total: float) -> dict[str, float]:
    """Each phase's share of `total`; 'other' = what the named phases leave (>= 0)."""
    named = {p: s for p, s in seconds.items() if p != "other"}
    out = {p: s / total for p, s in named.items()}
    out["other"] = max(total - sum(named.values()), 0.0) / total
    return out


@contextlib.contextmanager
def instrumented(clock: PhaseClock) -> Iterator[None]:
    """Patch the BUC learner module's calls with timers for the duration of a round."""
    import reid_core.learners.buc.learner as buc
    from reid_core.learners.buc.exemplar_memory import ExemplarMemory

    saved = (buc.train_epochs, buc.buc_merge, buc.BUCLearner._features, ExemplarMemory.init_from_features)
    state = {"trained": False}

    def train(*args, **kwargs):
        try:
            return clock.wrap("training", saved[0])(*args, **kwargs)
        finally:
            state["trained"] = True

    buc.train_epochs = train
    buc.buc_merge = clock.wrap("merge", saved[1])
    buc.BUCLearner._features = clock.wrap(lambda: "merge features" if state["trained"] else "memory init", saved[2])
    ExemplarMemory.init_from_features = clock.wrap("memory init", saved[3])
    try:
        yield
    finally:
        buc.train_epochs, buc.buc_merge, buc.BUCLearner._features, ExemplarMemory.init_from_features = saved


def edge_round(data_dir: Path, state_dir: Path, cfg: LearnerConfig, server_round: int,
               arrays=None) -> tuple[dict[str, float], float, dict]:
    """One round on a freshly built learner (as an edge gets it per message): phase seconds, total, arrays."""
    from reid_core.learners.buc.learner import BUCLearner

    clock = PhaseClock()
    start = time.perf_counter()
    with instrumented(clock):
        learner = clock.wrap("scan", BUCLearner)("edge", str(data_dir), cfg, str(state_dir))
        arrays, _metrics = learner.train_round(arrays, server_round)
        clock.wrap("evaluation", learner.evaluate)(arrays)
    return clock.seconds, time.perf_counter() - start, arrays


def learner_config(arch: str, height: int, width: int, device: str, epochs: int) -> LearnerConfig:
    embed = 128 if arch == "tiny" else 0
    return LearnerConfig(
        model=ModelConfig(arch=arch, embed_dim=embed, weights=None, device=device),
        image=ImageConfig(height=height, width=width, batch_size=32, eval_batch_size=256, num_workers=0),
        train=TrainConfig(first_round_epochs=epochs, epochs=epochs, progress=False),
        early_stop=EarlyStopConfig(), cluster=ClusterConfig(), total_rounds=3)


def table(rows: list[tuple[int, int, dict[str, float], float]]) -> str:
    lines = ["| N | round | seconds | " + " | ".join(PHASES) + " | outside training |",
             "|---|---|---|" + "---|" * (len(PHASES) + 1)]
    for n, rnd, seconds, total in rows:
        share = shares(seconds, total)
        cells = " | ".join(f"{100 * share[p]:.0f}%" for p in PHASES)
        lines.append(f"| {n:,} | {rnd} | {total:.1f} | {cells} | {100 * (1 - share['training']):.0f}% |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print each phase's share of two edge rounds per N."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[2000, 12936, 50000], help="training images N")
    parser.add_argument("--data-dir", help="keep the synthetic images here (default: a temporary folder)")
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--size", type=parse_size, default=(64, 32), help="input HxW (default 64x32)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    cfg = learner_config(args.arch, *args.size, args.device, args.epochs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_edge_") as tmp:
        root = Path(args.data_dir or tmp)
        print(f"model {args.arch} at {args.size[0]}x{args.size[1]}, {args.epochs} epochs/round, batch 32, "
              f"device {args.device}; images under {root}", flush=True)
        for n in args.sizes:
            start = time.perf_counter()
            data = write_market_folder(root / f"edge_{n}", n, 64, 32)
            print(f"N = {n:,}: images ready in {time.perf_counter() - start:.1f} s", flush=True)
            state = Path(tmp) / f"state_{n}"
            arrays = None
            for rnd in (1, 2):
                seconds, total, arrays = edge_round(data, state, cfg, rnd, arrays)
                rows.append((n, rnd, seconds, total))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + table(rows))
    goal = [r for r in rows if r[0] == 12936]
    if goal:
        outside = max(1 - shares(s, t)["training"] for _, _, s, t in goal)
        verdict = "meets" if outside <= OUTSIDE_TRAINING_GOAL else "misses"
        print(f"\nN = 12,936: outside training at most {100 * outside:.0f}% of a round "
              f"({verdict} the {100 * OUTSIDE_TRAINING_GOAL:.0f}% goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
