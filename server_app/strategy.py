"""FedUReIDStrategy: FedAvg weighted by #images + Personalized Update, state by client name."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from logging import INFO, WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from reid_core.runtime.checkpoint import ServerState
from reid_core.personalization.personalized_update import check_update, interpolate, weighted_average

from fedureid.records import CLIENT_NAME_KEY, from_record, to_record

MAX_EXAMPLES = 10_000_000  # an example count above this is absurd for one edge
EVAL_KEYS = ("rank1", "rank5", "rank10", "mAP")


class FedUReIDStrategy(FedAvg):
    """FedAvg over edges' backbones with mu-personalised downlink.

    Client k receives theta_k = mu * theta_k(its last upload) + (1 - mu) * theta_global
    (cloud PU), or the global model and mu to mix at the edge (edge PU: same result,
    one broadcast instead of one model per node). Per-client state is keyed by the
    client's stable name, asked of each new node_id with a QUERY message.
    """

    def __init__(
        self,
        state: ServerState,
        mu: float,
        pu_where: str = "cloud",
        min_clients: int = 2,
        checkpoint_dir: str | None = None,
        total_rounds: int | None = None,
        query_timeout: float = 600.0,
    ) -> None:
        super().__init__(
            min_train_nodes=min_clients,
            min_evaluate_nodes=min_clients,
            min_available_nodes=min_clients,
            weighted_by_key="num-examples",
        )
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"mu must be in [0, 1], got {mu}")
        if pu_where not in ("cloud", "edge"):
            raise ValueError(f"pu_where must be 'cloud' or 'edge', got {pu_where!r}")
        self.state = state
        self.mu = float(mu)
        self.pu_where = pu_where
        self.min_clients = min_clients
        self.checkpoint_dir = checkpoint_dir
        self.offset = state.round  # Strategy.start counts from 1; we resume after it
        self.total_rounds = total_rounds
        self.query_timeout = query_timeout
        self.node_to_client: dict[int, str] = {}
        self._round_started = 0.0
        self._sent: list = []  # Metadata of the messages last sent; the grid fills in their ids

    # ---- identity -------------------------------------------------------------
    def _identify(self, grid: Grid, node_ids: list[int]) -> None:
        """Ask nodes we have not seen for their client name (node_id changes on restart)."""
        unknown = [n for n in node_ids if n not in self.node_to_client]
        if not unknown:
            return
        query = [
            Message(
                content=RecordDict({"config": ConfigRecord({"query": CLIENT_NAME_KEY})}),
                message_type=MessageType.QUERY,
                dst_node_id=n,
            )
            for n in unknown
        ]
        self._sent = [m.metadata for m in query]
        for reply in grid.send_and_receive(query, timeout=self.query_timeout):
            node = self._node_of(reply)
            if reply.has_error() or "info" not in reply.content.config_records:
                log(WARNING, "node %s did not tell its client name", node)
                continue
            self._remember(node, str(reply.content["info"][CLIENT_NAME_KEY]))

    def _remember(self, node_id: int, name: str) -> None:
        for other, known in list(self.node_to_client.items()):
            if known == name and other != node_id:
                log(INFO, "client '%s' reconnected as node %s (was %s)", name, node_id, other)
                del self.node_to_client[other]
        self.node_to_client[node_id] = name

    def _node_of(self, reply: Message) -> int:
        """The node a reply is about; for a node that died the SuperLink answers as node 1."""
        sent = {m.message_id: m.dst_node_id for m in self._sent if m.message_id}
        return sent.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

    def client_name(self, node_id: int) -> str:
        """Stable name of a node, or a placeholder when it never told us."""
        return self.node_to_client.get(node_id, f"node-{node_id}")

    # ---- downlink -------------------------------------------------------------
    def personalized_arrays(self, name: str, global_arrays: dict) -> dict:
        """theta_k for one client (the global model when it has no local model yet)."""
        return interpolate(self.state.client_arrays.get(name), global_arrays, self.mu)

    def _per_node(
        self, msgs: Iterable[Message], arrays: ArrayRecord, config: ConfigRecord,
        grid: Grid, message_type: str,
    ) -> list[Message]:
        msgs = list(msgs)
        node_ids = [m.metadata.dst_node_id for m in msgs]
        self._identify(grid, node_ids)
        config = ConfigRecord(dict(config))
        config["server-round"] = self.offset + int(config["server-round"])
        config["total-rounds"] = int(self.total_rounds or 0)
        config["mu"] = self.mu
        config["pu-where"] = self.pu_where
        if self.pu_where == "edge":
            # One identical payload: Flower deduplicates it, the edge mixes with its local model.
            out = [
                Message(content=RecordDict({"arrays": arrays, "config": config}),
                        message_type=message_type, dst_node_id=n)
                for n in node_ids
            ]
        else:
            glob = from_record(arrays)
            out = []
            for n in node_ids:
                theta = to_record(self.personalized_arrays(self.client_name(n), glob))
                out.append(Message(content=RecordDict({"arrays": theta, "config": config}),
                                   message_type=message_type, dst_node_id=n))
        self._sent = [m.metadata for m in out]  # only the metadata: the models may be large
        phase = "train" if message_type == MessageType.TRAIN else "evaluate"
        self._count_down(int(config["server-round"]), phase, [m.content["arrays"] for m in out])
        return out

    # ---- traffic --------------------------------------------------------------
    def _traffic(self, rnd: int) -> dict:
        return self.state.round_record(rnd).setdefault("traffic", {})

    def _count_down(self, rnd: int, phase: str, records: list[ArrayRecord]) -> None:
        """Model bytes sent down: per edge, and distinct (Flower stores objects by content id)."""
        sized = [(r.object_id, r.count_bytes()) for r in records]  # each record serialised once
        sizes = dict(sized)
        t = self._traffic(rnd)
        t[f"{phase}_down_bytes"] = int(sum(n for _, n in sized))
        t[f"{phase}_down_distinct"] = len(sizes)
        t[f"{phase}_down_distinct_bytes"] = int(sum(sizes.values()))

    def configure_train(self, server_round, arrays, config, grid):
        """One message per node with its personalised model."""
        self._round_started = time.time()
        msgs = super().configure_train(server_round, arrays, config, grid)
        return self._per_node(msgs, arrays, config, grid, MessageType.TRAIN)

    def configure_evaluate(self, server_round, arrays, config, grid):
        """Evaluate each client's current (personalised) model on its own query/gallery."""
        msgs = super().configure_evaluate(server_round, arrays, config, grid)
        return self._per_node(msgs, arrays, config, grid, MessageType.EVALUATE)

    def evaluate_initial(self, grid: Grid, arrays: ArrayRecord, timeout: float) -> None:
        """Round 0: every client evaluates the untrained model, the honest starting point."""
        self._round_started = time.time()
        replies = grid.send_and_receive(self.configure_evaluate(0, arrays, ConfigRecord(), grid), timeout=timeout)
        self.aggregate_evaluate(0, replies)

    # ---- uplink ---------------------------------------------------------------
    def _reply_problem(self, reply: Message, is_train: bool) -> str | None:
        """Why a reply cannot be used, or None (Flower's checks crash on these)."""
        if reply.has_error():
            return f"error reply: {reply.error.reason}"
        content = reply.content
        if len(content.metric_records) != 1:
            return f"expected one MetricRecord, got {len(content.metric_records)}"
        metrics = next(iter(content.metric_records.values()))
        n = metrics.get("num-examples")
        if not isinstance(n, (int, float)) or not math.isfinite(n) or n <= 0 or n > MAX_EXAMPLES:
            return f"bad num-examples {n!r}"
        if not is_train:
            return None
        if len(content.array_records) != 1:
            return f"expected one ArrayRecord, got {len(content.array_records)}"
        try:
            update = from_record(next(iter(content.array_records.values())))
        except Exception as err:  # malformed payload must not crash the ServerApp
            return f"unreadable arrays: {err}"
        problem = check_update(update, self.state.global_arrays)
        if problem:
            return problem
        for key, ref in self.state.global_arrays.items():  # e.g. complex or int weights break FedAvg
            if update[key].dtype != ref.dtype:
                return f"dtype of '{key}' is {update[key].dtype}, expected {ref.dtype}"
        return None

    def _sender(self, reply: Message) -> str:
        node = self._node_of(reply)
        if not reply.has_error() and "info" in reply.content.config_records:
            name = reply.content["info"].get(CLIENT_NAME_KEY)
            if name:
                self._remember(node, str(name))
        return self.client_name(node)

    def aggregate_train(self, server_round, replies):
        """FedAvg of valid uploads weighted by #images; bad ones are logged and dropped."""
        rnd = self.offset + server_round
        record = self.state.round_record(rnd)
        accepted: dict[str, tuple[dict, dict]] = {}
        for reply in replies:
            name = self._sender(reply)
            problem = self._reply_problem(reply, is_train=True)
            if problem:
                log(WARNING, "round %d: rejected update from '%s': %s", rnd, name, problem)
                record["rejected"].append({"client": name, "reason": problem, "phase": "train"})
                continue
            metrics = dict(next(iter(reply.content.metric_records.values())))
            uploaded = next(iter(reply.content.array_records.values()))
            traffic = self._traffic(rnd)
            traffic["train_up_bytes"] = traffic.get("train_up_bytes", 0) + int(uploaded.count_bytes())
            update = from_record(uploaded)
            # in the global model's order: FedAvg pairs arrays by position
            accepted[name] = ({k: update[k] for k in self.state.global_arrays}, metrics)
        log(INFO, "round %d: aggregating %d update(s) %s", rnd, len(accepted), sorted(accepted))
        if len(accepted) < self.min_clients:
            log(WARNING, "round %d: %d valid update(s) < min_clients=%d; global model kept",
                rnd, len(accepted), self.min_clients)
        if not accepted:
            return None, None
        names = sorted(accepted)
        weights = [accepted[n][1]["num-examples"] for n in names]
        self.state.global_arrays = weighted_average([accepted[n][0] for n in names], weights)
        for n in names:
            self.state.client_arrays[n] = accepted[n][0]
            self.state.client_examples[n] = int(accepted[n][1]["num-examples"])
            # metrics.json contract spells it num_examples; Flower's weighting key is num-examples
            record["clients"].setdefault(n, {}).update({**accepted[n][1], "num_examples": int(weights[names.index(n)])})
        total = float(sum(weights))
        # Flower prints this record every round: keep it to what a user reads (metrics.json has all)
        mean = {
            k: sum(accepted[n][1][k] * w for n, w in zip(names, weights)) / total
            for k in AGGREGATED_TRAIN_KEYS
            if all(isinstance(accepted[n][1].get(k), (int, float)) for n in names)
        }
        return to_record(self.state.global_arrays), MetricRecord(mean)

    def aggregate_evaluate(self, server_round, replies):
        """Keep each client's rank-1/5/10 and mAP; checkpoint the finished round."""
        rnd = self.offset + server_round
        record = self.state.round_record(rnd)
        for reply in replies:
            name = self._sender(reply)
            problem = self._reply_problem(reply, is_train=False)
            if problem:
                log(WARNING, "round %d: rejected evaluation from '%s': %s", rnd, name, problem)
                record["rejected"].append({"client": name, "reason": problem, "phase": "evaluate"})
                continue
            metrics = dict(next(iter(reply.content.metric_records.values())))
            evaluation = {k: float(v) for k, v in metrics.items() if k != "num-examples"}
            evaluation["num_queries"] = int(metrics["num-examples"])
            record["clients"].setdefault(name, {}).update(evaluation)
        record["wall_s"] = round(time.time() - self._round_started, 3)
        self.state.round = rnd
        if self.checkpoint_dir:
            self.state.save(self.checkpoint_dir)
        for name, m in sorted(record["clients"].items()):
            if "rank1" in m:
                log(INFO, "%s", round_line(rnd, name, m))
        return None


AGGREGATED_TRAIN_KEYS = ("train-loss", "precision", "epochs", "clusters", "diag-purity")


def round_line(rnd: int, name: str, m: dict) -> str:
    """One console line per client and round: what it trained (if it did) and how it ranks."""
    line = f"round {rnd:2d}  {name:<10}"
    if "epochs" in m:
        line += (f" epochs {int(m['epochs']):2d}  loss {float(m['train-loss']):6.3f}"
                 f"  prec {float(m['precision']):4.2f}  clusters {int(m['clusters']):4d}")
    return line + f"  | rank-1 {float(m['rank1']):5.1f}  mAP {float(m['mAP']):5.1f}"
