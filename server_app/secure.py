"""Secure aggregation on the cloud: Flower's SecAgg+ workflow runs each round's train phase.

`SecAggPlusWorkflow` is written for Flower's legacy Strategy API (a `LegacyContext` whose strategy
has `configure_fit` / `aggregate_fit`) and exchanges four sets of messages of its own, so
`Strategy.start` cannot drive it. `secure_rounds` is `Strategy.start`'s round (train, then evaluate
through FedUReIDStrategy) with the train phase handed to the workflow. `_Bridge` is the legacy
strategy the workflow asks for the round's messages (FedUReIDStrategy.configure_train, as FitIns)
and hands the recovered weighted mean change to (`FederationCore.aggregate_sum`). The ServerApp
holds the masked vectors and their sum, never one edge's update.
"""

from __future__ import annotations

from logging import WARNING

from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.logger import log
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.serverapp import Grid

from fedureid import records as rec
from reid_core.config.schema import FederationConfig
from server_app.strategy import FedUReIDStrategy

HALTED = "secure aggregation halted: fewer edges answered than its reconstruction threshold needs"


def _count_or_fraction(x: float) -> int | float:
    """Flower reads an int as a count and a float as a fraction of the round's edges."""
    return float(x) if x <= 1 else int(x)


class _WatchedGrid:
    """The grid, noting per exchange which nodes were asked and which answered (to name who is missing)."""

    def __init__(self, grid: Grid) -> None:
        self._grid = grid
        self.exchanges: list[tuple[set[int], set[int]]] = []
        self.up_bytes = 0  # the masked vectors and everything else the edges sent

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        answered = {r.metadata.src_node_id for r in replies if not r.has_error()}
        self.exchanges.append(({m.metadata.dst_node_id for m in messages}, answered))
        self.up_bytes += sum(_content_bytes(r) for r in replies if not r.has_error())
        return replies


def _content_bytes(reply: Message) -> int:
    """The payload an edge sent: arrays, metrics and the protocol's values (masked vectors, keys, shares)."""
    content = reply.content
    records = [*content.array_records.values(), *content.metric_records.values()]
    config = sum(len(k) + _value_bytes(v) for r in content.config_records.values() for k, v in r.items())
    return int(sum(r.count_bytes() for r in records) + config)


def _value_bytes(value) -> int:  # ConfigRecord.count_bytes refuses an empty string
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, list):
        return sum(_value_bytes(v) for v in value)
    return 8


class _Bridge(Strategy):
    """The legacy strategy SecAggPlusWorkflow drives, backed by FedUReIDStrategy and its core."""

    def __init__(self, fed: FedUReIDStrategy, grid: _WatchedGrid, run_id: int, clip_norm: float) -> None:
        self.fed, self.grid, self.run_id, self.clip_norm = fed, grid, run_id, clip_norm
        self.aggregated = False

    def configure_fit(self, server_round, parameters, client_manager):
        msgs = self.fed.configure_train(server_round, rec.to_record(self.fed.state.global_arrays),
                                        ConfigRecord(), self.grid)
        out = []
        for m in msgs:
            arrays = rec.from_record(m.content[rec.ARRAYS])
            config = {rec.CLIP_NORM: float(self.clip_norm), **dict(m.content[rec.CONFIG]),
                      rec.ARRAY_NAMES: rec.NAME_SEPARATOR.join(arrays)}  # with DP on, its clipping norm (config) wins
            proxy = GridClientProxy(m.metadata.dst_node_id, self.grid, self.run_id)
            out.append((proxy, FitIns(ndarrays_to_parameters(list(arrays.values())), config)))
        return out

    def aggregate_fit(self, server_round, results, failures):
        """`results` each carry the same recovered mean change and their edge's metrics in the clear."""
        rnd = self.fed.offset + server_round
        mean_change = parameters_to_ndarrays(results[0][1].parameters) if results else []
        reports = {self.fed.client_name(proxy.node_id): dict(res.metrics) for proxy, res in results}
        new_global, _ = self.fed.core.aggregate_sum(rnd, mean_change, reports)
        self.aggregated = new_global is not None
        return None, {}  # the core holds the model; the workflow's own copy is not used

    def initialize_parameters(self, client_manager):
        return None

    def configure_evaluate(self, server_round, parameters, client_manager):
        return []

    def aggregate_evaluate(self, server_round, results, failures):
        return None, {}

    def evaluate(self, server_round, parameters):
        return None


def secure_rounds(strategy: FedUReIDStrategy, grid: Grid, context: Context, fed: FederationConfig,
                  num_rounds: int, timeout: float) -> None:
    """`num_rounds` rounds whose train phase is SecAgg+; evaluation and checkpoints as in the plain mode."""
    workflow = SecAggPlusWorkflow(
        num_shares=_count_or_fraction(fed.secagg_num_shares),
        reconstruction_threshold=_count_or_fraction(fed.secagg_reconstruction_threshold),
        max_weight=float(fed.secagg_max_weight), clipping_range=float(fed.secagg_clipping_range),
        quantization_range=int(fed.secagg_quantization_range), modulus_range=int(fed.secagg_modulus_range),
        timeout=timeout)
    watched = _WatchedGrid(grid)
    bridge = _Bridge(strategy, watched, context.run_id, fed.secagg_clip_norm)
    legacy = LegacyContext(context, strategy=bridge)
    for server_round in range(1, num_rounds + 1):
        rnd = strategy.offset + server_round
        legacy.state.config_records["config"] = ConfigRecord({"current_round": server_round})
        legacy.state.array_records["parameters"] = ArrayRecord()  # read by the workflow; the bridge sends the core's
        watched.exchanges.clear()
        watched.up_bytes, bridge.aggregated = 0, False
        workflow(watched, legacy)
        strategy.state.round_record(rnd).setdefault("traffic", {})["train_up_bytes"] = watched.up_bytes
        if not bridge.aggregated:
            _halted(strategy, rnd, watched)
        evaluate = strategy.configure_evaluate(server_round, rec.to_record(strategy.state.global_arrays),
                                               ConfigRecord(), grid)
        strategy.aggregate_evaluate(server_round, grid.send_and_receive(evaluate, timeout=timeout) if evaluate else [])


STAGES = ("setup", "share keys", "train and mask", "unmask")  # SecAggPlusWorkflow's exchanges, in order


def _halted(strategy: FedUReIDStrategy, rnd: int, watched: _WatchedGrid) -> None:
    """The protocol stopped short: name the edges first missing (later stages fail because of them), and the
    stage; the global model is kept. Flower's SecAgg+ recovers an edge lost in the train stage, not before it."""
    first = next(((i, asked - answered) for i, (asked, answered) in enumerate(watched.exchanges)
                  if asked - answered), None)
    if first is None:
        missing, where = [], "too few edges to start"
    else:
        missing, where = sorted({strategy.client_name(n) for n in first[1]}), f"stage '{STAGES[min(first[0], 3)]}'"
    log(WARNING, "round %d: %s (missing at %s: %s); global model kept", rnd, HALTED, where, ", ".join(missing) or "none")
    for name in missing:
        strategy.core.reject(rnd, name, f"no answer at {where}; {HALTED}", "train")
    if not missing:
        strategy.state.round_record(rnd)["rejected"].append({"client": "-", "reason": f"{HALTED} ({where})",
                                                              "phase": "train"})
