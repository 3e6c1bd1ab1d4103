"""From settings to a federation: the initial (or resumed) state, the core, the run's metadata."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from typing import Any

import torch

from reid_core.config.settings import ConfigError, Settings
from reid_core.federation.core import AggregationRule, FederationCore, Say, python_log
from reid_core.federation.privacy import Privacy
from reid_core.federation.screening import Screening
from reid_core.federation.state import ServerState
from reid_core.models import build_model
from reid_core.runtime.arrays import model_arrays


def fingerprint(settings: Settings) -> str:
    """What must match for a checkpoint to be resumed (not paths, timeouts or resume)."""
    d = asdict(settings)
    for key in ("run_dir", "overrides", "rounds"):
        d.pop(key)
    pu = d.pop("pu")  # the digest as when mu and where sat under federation: earlier checkpoints still resume
    d["federation"] = {"mu": pu["mu"], "pu_where": pu["where"]}
    if pu["local_bn"]:  # only when on, so that the default digest stays as it was
        d["federation"]["local_bn"] = True
    if pu["train_from"] != "personalized":  # likewise
        d["federation"]["pu_train_from"] = pu["train_from"]
    d["train"].pop("progress")
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_dir(settings: Settings) -> str:
    return os.path.join(settings.run_dir, "checkpoint")


def ensure_synthetic_data(settings: Settings) -> None:
    """Generate the embedded synthetic federation on first use (atomic, idempotent)."""
    if not settings.synth_preset:
        return
    from reid_core.data.federation import ensure_federation

    ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)


def initial_state(settings: Settings, say: Say = python_log) -> ServerState:
    """Resume from the run's checkpoint when allowed, else a fresh model seeded by `settings.seed`."""
    fp = fingerprint(settings)
    if settings.federation.resume:
        state = ServerState.load(checkpoint_dir(settings))
        if state is not None:
            if state.fingerprint != fp:
                raise ConfigError(
                    f"run_dir {settings.run_dir} holds a checkpoint of a different configuration; "
                    "use another run_dir or federation.resume=false"
                )
            say(logging.INFO, f"resuming from checkpoint after round {state.round} "
                              f"(clients {sorted(state.client_arrays)})")
            return state
    torch.manual_seed(settings.seed)
    return ServerState(global_arrays=model_arrays(build_model(settings.model)), fingerprint=fp)


def federation_core(settings: Settings, say: Say = python_log, rule: AggregationRule | None = None) -> FederationCore:
    """The core of the configured federation, its state fresh or resumed from run_dir.

    `rule`: the robust aggregation `federation.aggregation` names (fedureid.aggregators holds
    Flower's; this core never imports Flower), None for FedAvg.
    """
    fed = settings.federation
    if fed.aggregation != "fedavg" and rule is None:
        raise ConfigError(f"federation.aggregation={fed.aggregation} needs its rule passed in "
                          "(fedureid.aggregators.aggregation_rule); this engine was given none")
    return FederationCore(initial_state(settings, say), pu=settings.pu,
                          min_clients=fed.min_clients,
                          checkpoint_dir=checkpoint_dir(settings) if fed.checkpoint else None, say=say,
                          screening=screening(settings), rule=rule, evaluate_every=fed.evaluate_every,
                          privacy=privacy(settings), fraction_train=fed.fraction_train, seed=settings.seed)


def screening(settings: Settings) -> Screening:
    fed = settings.federation
    return Screening(count_growth=fed.count_growth, max_share=fed.max_share, outlier_k=fed.outlier_k,
                     models=fed.screen_models)


def privacy(settings: Settings) -> Privacy:
    fed = settings.federation
    return Privacy(noise_multiplier=fed.dp_noise_multiplier, clipping_norm=fed.dp_clipping_norm, seed=settings.seed)


def run_meta(settings: Settings, started: float, engine: str) -> dict[str, Any]:
    """What metrics.json says of the run besides its rounds."""
    fed = settings.federation
    return {"experiment": settings.experiment, "algorithm": settings.algorithm, "rounds_total": settings.rounds,
            "mu": settings.pu.mu, "pu_where": settings.pu.where, "local_bn": settings.pu.local_bn,
            "pu_train_from": settings.pu.train_from, "clients": list(settings.clients), "engine": engine,
            "wall_s_serverapp": round(time.time() - started, 2), "overrides": list(settings.overrides)}
