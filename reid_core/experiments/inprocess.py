"""The federation in one process, without Flower: for a GPU box that has torch but not Ray.

`fedureid simulate` needs flwr's simulation engine (Ray); a lent accelerator with no
package index (docs/results.md, the GPU section) has torch but neither. This loop runs
the same edge learners (`learner_from_settings`), the same FedAvg weighted by #images and
the same cloud-side Personalized Update (`weighted_average`, `interpolate`) as
`server_app.strategy.FedUReIDStrategy`, one client after another, and writes the same
metrics.json. What it leaves out is what Flower adds: messages, node identities, rejected
replies, checkpoint/resume of the server and traffic counts.

Run: ``python -m reid_core.experiments.inprocess experiment=real_cpu_cc learner=cc run_dir=DIR
[--deadline-s S]``; with a deadline, no round after the first starts once the time left is
shorter than the last round took, so a lease-bound run ends with whole rounds.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence

import torch

from reid_core.config.settings import Settings, load_settings
from reid_core.experiments.report import markdown_table, write_run_outputs
from reid_core.learners import learner_from_settings
from reid_core.models import build_model
from reid_core.personalization.personalized_update import interpolate, weighted_average
from reid_core.runtime.arrays import model_arrays

log = logging.getLogger(__name__)


def run_inprocess(settings: Settings, deadline_s: float | None = None) -> dict:
    """Run `settings.rounds` rounds (fewer if `deadline_s` runs out); return metrics.json's dict."""
    if deadline_s is not None and not deadline_s > 0:
        raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s}")
    earlier = [p for p in ("metrics.json", "edge_state") if os.path.exists(os.path.join(settings.run_dir, p))]
    if earlier:  # no server checkpoint here: starting over would overwrite that run, not resume it
        raise FileExistsError(f"run_dir {settings.run_dir} holds an earlier run ({', '.join(earlier)}); "
                              "the in-process federation does not resume: choose another run_dir")
    t0 = time.time()
    if settings.synth_preset:  # the embedded synthetic federation, as the ServerApp makes it
        from reid_core.data.federation import ensure_federation

        ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)
    torch.manual_seed(settings.seed)  # the ServerApp's seeded initial model
    global_arrays = model_arrays(build_model(settings.model))
    mu = settings.federation.mu
    learners = {name: learner_from_settings(settings, name, settings.client_dir(name),
                                            os.path.join(settings.run_dir, "edge_state", name))
                for name in settings.clients}
    history = [{"round": 0, "clients": {n: learners[n].evaluate(global_arrays) for n in settings.clients},
                "rejected": []}]
    local: dict[str, dict] = {}
    last = 0.0  # the last round's wall time: rounds after the first have the same epochs
    for rnd in range(1, settings.rounds + 1):
        if deadline_s is not None and rnd > 1 and time.time() - t0 + last > deadline_s:
            log.warning("stopping before round %d: %.0f s left, the last round took %.0f s",
                        rnd, deadline_s - (time.time() - t0), last)
            break
        start = time.time()
        record: dict = {"round": rnd, "clients": {}, "rejected": []}
        examples = {}
        for name in sorted(settings.clients):  # the strategy's order: FedAvg pairs models by position
            learner = learners[name]
            learner.start_round(rnd)
            arrays, metrics = learner.train_round(interpolate(local.get(name), global_arrays, mu), rnd,
                                                  settings.rounds)
            local[name] = {k: arrays[k] for k in global_arrays}
            examples[name] = int(metrics["num-examples"])
            record["clients"][name] = {**metrics, "num_examples": examples[name]}
        names = sorted(local)
        global_arrays = weighted_average([local[n] for n in names], [examples[n] for n in names])
        for name in names:
            evaluation = learners[name].evaluate(interpolate(local[name], global_arrays, mu))
            evaluation["num_queries"] = int(evaluation.pop("num-examples", 0))
            record["clients"][name].update(evaluation)
            m = record["clients"][name]
            print(f"round {rnd:2d}  {name:<10} epochs {int(m['epochs']):2d} clusters {int(m['clusters']):4d}"
                  f"  | rank-1 {float(m['rank1']):5.1f}  mAP {float(m['mAP']):5.1f}", flush=True)
        record["wall_s"] = round(time.time() - start, 3)
        last = record["wall_s"]
        history.append(record)
        metrics = write_run_outputs(settings.run_dir, history, _meta(settings, t0))  # a killed run keeps its rounds
    print(markdown_table(metrics["final"], "final per-client results"), flush=True)
    return metrics


def _meta(settings: Settings, t0: float) -> dict:
    return {"experiment": settings.experiment, "algorithm": settings.algorithm, "rounds_total": settings.rounds,
            "mu": settings.federation.mu, "pu_where": "cloud", "clients": list(settings.clients),
            "engine": "inprocess", "wall_s_serverapp": round(time.time() - t0, 2),
            "overrides": list(settings.overrides)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for `fedureid simulate`")
    parser.add_argument("--deadline-s", type=float, default=None, help="start no round that would end past this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_inprocess(load_settings(list(args.overrides)), args.deadline_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
