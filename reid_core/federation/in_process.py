"""The federation in one process, without Flower: the same core and learners, edges one after another.

It drives `FederationCore` exactly as `server_app.strategy` does through Flower's
messages, so the two give the same metrics.json for the same settings (a slow test
holds them to it). Flower adds messages, node identities and traffic counts; this
driver needs only torch, for a machine without Ray, and it is `fedureid standalone`
(one edge alone: FedAvg of one model is that model).

Each edge computes with `federation.client_cpus` threads, the share the simulation
gives each virtual SuperNode: float sums, hence results, depend on the thread count.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace

import torch
from threadpoolctl import threadpool_limits

from reid_core.config.settings import Settings
from reid_core.federation.core import AggregationRule, scalar_metrics
from reid_core.federation.misbehaviour import misbehave
from reid_core.federation.report import markdown_table, write_run_outputs
from reid_core.federation.start import ensure_synthetic_data, federation_core, run_meta
from reid_core.learners import learner_from_settings

log = logging.getLogger(__name__)


def _print(level: int, message: str) -> None:
    """The core's messages: round lines and warnings on the console, as the ServerApp logs them."""
    if level >= logging.INFO:
        print(message, flush=True)


def run_in_process(settings: Settings, deadline_s: float | None = None, engine: str = "inprocess",
                   rule: AggregationRule | None = None) -> dict:
    """Run the remaining rounds of `settings` (fewer if `deadline_s` runs out); return metrics.json's dict.

    With a deadline, no round after the first starts once the time left is shorter than
    the last round took, so a time-bound run ends with whole rounds. A run_dir holding a
    checkpoint of the same settings resumes after its last round.
    """
    if deadline_s is not None and not deadline_s > 0:
        raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s}")
    t0 = time.time()
    threads = max(1, settings.federation.client_cpus)
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy's BLAS and faiss's OpenMP too, as OMP_NUM_THREADS does in the simulation
    ensure_synthetic_data(settings)
    core = federation_core(settings, say=_print, rule=rule)
    state = core.state
    learners = {name: learner_from_settings(settings, name, settings.client_dir(name),
                                            os.path.join(settings.run_dir, "edge_state", name))
                for name in settings.clients}
    if state.round == 0 and not state.history:  # round 0: the untrained model, the honest start
        for name in sorted(learners):
            evaluation = learners[name].evaluate(None, core.received(name, state.global_arrays, training=False))
            core.record_evaluation(0, name, scalar_metrics(evaluation))
        core.finish_round(0, time.time() - t0)
    last = 0.0  # the last round's wall time: rounds after the first have the same epochs
    for rnd in range(state.round + 1, settings.rounds + 1):
        if deadline_s is not None and last > 0 and time.time() - t0 + last > deadline_s:
            log.warning("stopping before round %d: %.0f s left, the last round took %.0f s",
                        rnd, deadline_s - (time.time() - t0), last)
            break
        start = time.time()
        glob = state.global_arrays
        accepted = {}
        for name in core.train_edges(rnd, learners):
            sent = core.downlink(name, glob, training=True)
            try:
                arrays, metrics = learners[name].train_round(None, rnd, settings.rounds, core.start_from(sent, True))
            except Exception as err:  # noqa: BLE001 (an edge's failure is its error reply, as in Flower)
                core.reject(rnd, name, f"error reply: {err}", "train")
                continue
            if name in settings.misbehave:  # on purpose, for tests of the defences (as the ClientApp does)
                arrays, metrics["num-examples"] = misbehave(settings.misbehave[name], arrays, sent,
                                                            metrics["num-examples"], seed=settings.seed * 1000 + rnd)
            metrics = scalar_metrics(metrics)  # as an edge's reply carries them
            problem = core.examples_problem(metrics["num-examples"]) or core.update_problem(arrays)
            if problem:
                core.reject(rnd, name, problem, "train")
                continue
            accepted[name] = (arrays, metrics)
        new_global, _ = core.aggregate(rnd, accepted)
        glob = new_global if new_global is not None else glob
        for name in sorted(learners) if core.evaluates(rnd, settings.rounds) else ():
            try:
                evaluation = learners[name].evaluate(None, core.received(name, glob, training=False))
            except Exception as err:  # noqa: BLE001 (as above)
                core.reject(rnd, name, f"error reply: {err}", "evaluate")
                continue
            core.record_evaluation(rnd, name, scalar_metrics(evaluation))
        core.finish_round(rnd, time.time() - start)
        last = state.round_record(rnd)["wall_s"]
        write_run_outputs(settings.run_dir, state.history, run_meta(settings, t0, engine))  # a killed run keeps its rounds
    metrics = write_run_outputs(settings.run_dir, state.history, run_meta(settings, t0, engine))
    print(markdown_table(metrics["final"], "final per-client results"), flush=True)
    return metrics


def run_standalone(settings: Settings, client: str) -> dict:
    """One edge alone, no federation (the paper's standalone row): the in-process run of that edge only."""
    alone = replace(settings, clients=(client,), federation=replace(settings.federation, min_clients=1))
    return run_in_process(alone, engine="standalone")
