"""ServerApp: compose the experiment, build the initial model, run FedUReIDStrategy, write results."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from logging import INFO

import torch
from flwr.app import ConfigRecord, Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from reid_core.runtime.arrays import model_arrays
from reid_core.runtime.checkpoint import ServerState
from reid_core.models import build_model
from reid_core.experiments.report import markdown_table, write_run_outputs
from reid_core.config.settings import ConfigError, Settings, load_settings, parse_overrides

from fedureid.records import to_record
from server_app.strategy import FedUReIDStrategy

app = ServerApp()


def settings_from_run_config(run_config: dict) -> Settings:
    """Hydra compose of conf/ with the experiment and overrides Flower passed."""
    overrides = [f"experiment={run_config.get('experiment', 'demo')}",
                 *parse_overrides(str(run_config.get("overrides", "")))]
    # The cloud holds no images: client folders are checked where they live.
    return load_settings(overrides, base_dir=str(run_config.get("base-dir", "")) or None, check_data=False)


def fingerprint(settings: Settings) -> str:
    """What must match for a checkpoint to be resumed (not paths, timeouts or resume)."""
    d = asdict(settings)
    for key in ("run_dir", "overrides", "rounds"):
        d.pop(key)
    d["federation"] = {k: v for k, v in d["federation"].items() if k in ("mu", "pu_where")}
    d["train"].pop("progress")
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def ensure_synthetic_data(settings: Settings) -> None:
    """Generate the embedded synthetic federation on first use (atomic, idempotent)."""
    if not settings.synth_preset:
        return
    from reid_core.data.federation import ensure_federation

    ensure_federation(settings.data_root, seed=settings.synth_seed, preset=settings.synth_preset)


def initial_state(settings: Settings, ckpt_dir: str) -> ServerState:
    """Resume from the run's checkpoint when allowed, else a fresh seeded model."""
    fp = fingerprint(settings)
    if settings.federation.resume:
        state = ServerState.load(ckpt_dir)
        if state is not None:
            if state.fingerprint != fp:
                raise ConfigError(
                    f"run_dir {settings.run_dir} holds a checkpoint of a different configuration; "
                    "use another run_dir or federation.resume=false"
                )
            log(INFO, "resuming from checkpoint after round %d (clients %s)", state.round, sorted(state.client_arrays))
            return state
    torch.manual_seed(settings.seed)
    return ServerState(global_arrays=model_arrays(build_model(settings.model)), fingerprint=fp)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation and write metrics.json, report.md and curves.png."""
    t0 = time.time()
    settings = settings_from_run_config(dict(context.run_config))
    ensure_synthetic_data(settings)
    ckpt_dir = os.path.join(settings.run_dir, "checkpoint")
    state = initial_state(settings, ckpt_dir)
    remaining = settings.rounds - state.round
    fed = settings.federation
    log(INFO, "FedUReID: experiment=%s algorithm=%s rounds=%d (remaining %d) mu=%.2f PU at %s",
        settings.experiment, settings.algorithm, settings.rounds, remaining, fed.mu, fed.pu_where)
    strategy = FedUReIDStrategy(state, mu=fed.mu, pu_where=fed.pu_where, min_clients=fed.min_clients,
                                checkpoint_dir=ckpt_dir if fed.checkpoint else None,
                                total_rounds=settings.rounds)
    if remaining > 0 and state.round == 0 and not state.history:
        strategy.evaluate_initial(grid, to_record(state.global_arrays), fed.timeout)
    if remaining > 0:
        strategy.start(grid=grid, initial_arrays=to_record(state.global_arrays), num_rounds=remaining,
                       timeout=fed.timeout, train_config=ConfigRecord(), evaluate_config=ConfigRecord())
    meta = {"experiment": settings.experiment, "algorithm": settings.algorithm, "rounds_total": settings.rounds,
            "mu": fed.mu, "pu_where": fed.pu_where, "clients": list(settings.clients),
            "wall_s_serverapp": round(time.time() - t0, 2), "overrides": list(settings.overrides)}
    metrics = write_run_outputs(settings.run_dir, state.history, meta)
    log(INFO, "\n%s", markdown_table(metrics["final"], "final per-client results"))
    log(INFO, "results written to %s", settings.run_dir)
