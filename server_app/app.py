"""ServerApp: compose the experiment, start (or resume) the federation, run FedUReIDStrategy, write results."""

from __future__ import annotations

import time
from logging import INFO

from flwr.app import ConfigRecord, Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from fedureid.aggregators import aggregation_rule
from fedureid.records import to_record
from reid_core.config.settings import Settings, load_settings, parse_overrides
from reid_core.federation.report import markdown_table, write_run_outputs
from reid_core.federation.start import ensure_synthetic_data, federation_core, run_meta
from server_app.accounting import Accountant
from server_app.quorum_grid import QuorumGrid
from server_app.secure import secure_rounds
from server_app.strategy import FedUReIDStrategy

app = ServerApp()


def settings_from_run_config(run_config: dict) -> Settings:
    """Hydra compose of conf/ with the experiment and overrides Flower passed."""
    overrides = [f"experiment={run_config.get('experiment', 'demo')}",
                 *parse_overrides(str(run_config.get("overrides", "")))]
    # The cloud holds no images: client folders are checked where they live.
    return load_settings(overrides, base_dir=str(run_config.get("base-dir", "")) or None, check_data=False)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation and write metrics.json, report.md and curves.png."""
    t0 = time.time()
    settings = settings_from_run_config(dict(context.run_config))
    ensure_synthetic_data(settings)
    fed = settings.federation
    core = federation_core(settings, say=log, rule=aggregation_rule(fed.aggregation, fed.num_malicious, fed.trim))
    if fed.dp_noise_multiplier > 0:  # Flower's accountant, composed over the rounds a resumed run spent too
        core.account = Accountant(fed.dp_delta, len(settings.clients), core.state.history)
    state = core.state
    remaining = settings.rounds - state.round
    log(INFO, "FedUReID: experiment=%s algorithm=%s rounds=%d (remaining %d) mu=%.2f PU at %s",
        settings.experiment, settings.algorithm, settings.rounds, remaining, settings.pu.mu, settings.pu.where)
    strategy = FedUReIDStrategy(core, total_rounds=settings.rounds, query_timeout=fed.timeout)
    if fed.grace is not None:  # never with SecAgg+ (refused by the config: it has its own threshold)
        grid = QuorumGrid(grid, quorum=fed.min_clients, grace=fed.grace)
    if remaining > 0 and state.round == 0 and not state.history:
        strategy.evaluate_initial(grid, to_record(state.global_arrays), fed.timeout)
    if remaining > 0 and fed.secure_aggregation:
        log(INFO, "secure aggregation (SecAgg+): the cloud sees only the edges' weighted mean change; "
                  "screening of single updates does not apply, and each edge weighs its image count "
                  "(federation.max_share=%g cannot cap a share the cloud never sees)", fed.max_share)
        secure_rounds(strategy, grid, context, fed, remaining, fed.timeout)
    elif remaining > 0:
        strategy.start(grid=grid, initial_arrays=to_record(state.global_arrays), num_rounds=remaining,
                       timeout=fed.timeout, train_config=ConfigRecord(), evaluate_config=ConfigRecord())
    metrics = write_run_outputs(settings.run_dir, state.history, run_meta(settings, t0, engine="flower"))
    log(INFO, "\n%s", markdown_table(metrics["final"], "final per-client results"))
    log(INFO, "results written to %s", settings.run_dir)
