"""FedUReIDStrategy: Flower's side of a round; the federation itself is `reid_core.federation.FederationCore`.

What stays here is Flower's business: messages, the client name behind each node id
(asked with a QUERY message, as node ids change on restart), replies Flower cannot
parse, and the model bytes each round moves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from logging import INFO, WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedureid import records as rec
from reid_core.federation.core import FederationCore
from reid_core.federation.state import ServerState


# An edge whose reply did not come before its phase ended (the timeout, or the grace after a quorum)
NO_REPLY = "no reply before the phase ended (federation.timeout, or federation.grace after min_clients)"


class FedUReIDStrategy(FedAvg):
    """FedAvg over edges' backbones with mu-personalised downlink, state keyed by client name.

    Client k receives theta_k = mu * theta_k(its last upload) + (1 - mu) * theta_global
    (cloud PU), or the global model and mu to mix at the edge (edge PU: same result,
    one broadcast instead of one model per node).
    """

    def __init__(self, core: FederationCore, total_rounds: int | None = None, query_timeout: float = 600.0) -> None:
        super().__init__(min_train_nodes=core.min_clients, min_evaluate_nodes=core.min_clients,
                         min_available_nodes=core.min_clients, weighted_by_key=rec.NUM_EXAMPLES)
        self.core = core  # the federation itself (reid_core.federation.start.federation_core builds it)
        self.offset = core.state.round  # Strategy.start counts from 1; we resume after it
        self.total_rounds = total_rounds
        self.query_timeout = query_timeout
        self.node_to_client: dict[int, str] = {}
        self._round_started = 0.0
        self._sent: list = []  # Metadata of the messages last sent; the grid fills in their ids

    @property
    def state(self) -> ServerState:
        return self.core.state

    # ---- identity -------------------------------------------------------------
    def _identify(self, grid: Grid, node_ids: list[int]) -> None:
        """Ask nodes we have not seen for their client name (node_id changes on restart)."""
        unknown = [n for n in node_ids if n not in self.node_to_client]
        if not unknown:
            return
        query = [Message(content=RecordDict({rec.CONFIG: ConfigRecord({rec.QUERY: rec.CLIENT_NAME})}),
                         message_type=MessageType.QUERY, dst_node_id=n) for n in unknown]
        self._sent = [m.metadata for m in query]
        for reply in grid.send_and_receive(query, timeout=self.query_timeout):
            node = self._node_of(reply)
            if reply.has_error() or rec.INFO not in reply.content.config_records:
                log(WARNING, "node %s did not tell its client name", node)
                continue
            self._remember(node, str(reply.content[rec.INFO][rec.CLIENT_NAME]))

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

    def _unanswered(self, rnd: int, replies: list[Message], phase: str) -> None:
        """Name the edges whose reply did not come before the phase ended (Flower returns none for them)."""
        answered = {m.metadata.reply_to_message_id for m in replies}
        for meta in self._sent:
            if meta.message_id and meta.message_id not in answered:
                self.core.reject(rnd, self.client_name(meta.dst_node_id), NO_REPLY, phase)

    def client_name(self, node_id: int) -> str:
        """Stable name of a node, or a placeholder when it never told us."""
        return self.node_to_client.get(node_id, f"node-{node_id}")

    def _sender(self, reply: Message) -> str:
        node = self._node_of(reply)
        if not reply.has_error() and rec.INFO in reply.content.config_records:
            name = reply.content[rec.INFO].get(rec.CLIENT_NAME)
            if name:
                self._remember(node, str(name))
        return self.client_name(node)

    # ---- downlink -------------------------------------------------------------
    def _per_node(self, msgs: Iterable[Message], arrays: ArrayRecord, config: ConfigRecord,
                  grid: Grid, message_type: str) -> list[Message]:
        node_ids = [m.metadata.dst_node_id for m in msgs]
        self._identify(grid, node_ids)
        config = ConfigRecord(dict(config))
        config[rec.SERVER_ROUND] = self.offset + int(config[rec.SERVER_ROUND])
        config[rec.TOTAL_ROUNDS] = int(self.total_rounds or 0)
        for key, value in rec.pu_config(self.core.pu).items():
            config[key] = value
        if self.core.privacy.on:  # the edge clips its change before it leaves (the cloud clips again)
            config[rec.CLIP_NORM] = self.core.privacy.clipping_norm
        glob = rec.from_record(arrays)
        out = []
        for n in node_ids:
            name = self.client_name(n)
            sent = self.core.downlink(name, glob, training=message_type == MessageType.TRAIN)
            # One record for the one global model (edge PU): Flower sends an identical payload once
            payload = arrays if sent is glob else rec.to_record(sent)
            out.append(Message(content=RecordDict({rec.ARRAYS: payload, rec.CONFIG: config}),
                               message_type=message_type, dst_node_id=n))
        self._sent = [m.metadata for m in out]  # only the metadata: the models may be large
        phase = "train" if message_type == MessageType.TRAIN else "evaluate"
        self._count_down(int(config[rec.SERVER_ROUND]), phase, [m.content[rec.ARRAYS] for m in out])
        return out

    def configure_train(self, server_round, arrays, config, grid):
        """One message per node with its personalised model."""
        self._round_started = time.time()
        msgs = super().configure_train(server_round, arrays, config, grid)  # every node online (fraction 1)
        self._identify(grid, [m.metadata.dst_node_id for m in msgs])
        # drawn among the nodes that told their name: one that did not is gone (a killed SuperNode stays
        # listed for up to a minute) and would only take the place of an edge that can train
        named = [self.node_to_client[m.metadata.dst_node_id] for m in msgs if m.metadata.dst_node_id in self.node_to_client]
        chosen = set(self.core.train_edges(self.offset + server_round, named))
        msgs = [m for m in msgs if self.node_to_client.get(m.metadata.dst_node_id) in chosen]
        return self._per_node(msgs, arrays, config, grid, MessageType.TRAIN)

    def configure_evaluate(self, server_round, arrays, config, grid):
        """Evaluate each client's current (personalised) model on its own query/gallery (when due)."""
        if not self.core.evaluates(self.offset + server_round, int(self.total_rounds or 0)):
            self._sent = []  # nothing awaited this phase
            return []
        msgs = super().configure_evaluate(server_round, arrays, config, grid)
        return self._per_node(msgs, arrays, config, grid, MessageType.EVALUATE)

    def evaluate_initial(self, grid: Grid, arrays: ArrayRecord, timeout: float) -> None:
        """Round 0: every client evaluates the untrained model, the honest starting point."""
        self._round_started = time.time()
        replies = grid.send_and_receive(self.configure_evaluate(0, arrays, ConfigRecord(), grid), timeout=timeout)
        self.aggregate_evaluate(0, replies)

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

    # ---- uplink ---------------------------------------------------------------
    def _unpack(self, reply: Message, is_train: bool) -> tuple[dict | None, dict | None, str | None]:
        """(arrays, metrics, problem): what a reply carries, or why it cannot be used."""
        if reply.has_error():
            return None, None, f"error reply: {reply.error.reason}"
        content = reply.content
        if len(content.metric_records) != 1:
            return None, None, f"expected one MetricRecord, got {len(content.metric_records)}"
        metrics = dict(next(iter(content.metric_records.values())))
        problem = self.core.examples_problem(metrics.get(rec.NUM_EXAMPLES))
        if problem or not is_train:
            return None, metrics, problem
        if len(content.array_records) != 1:
            return None, metrics, f"expected one ArrayRecord, got {len(content.array_records)}"
        try:
            arrays = rec.from_record(next(iter(content.array_records.values())))
        except Exception as err:  # a malformed payload must not crash the ServerApp
            return None, metrics, f"unreadable arrays: {err}"
        return arrays, metrics, self.core.update_problem(arrays)

    def aggregate_train(self, server_round, replies):
        """FedAvg of valid uploads weighted by #images; bad ones are logged and dropped."""
        rnd = self.offset + server_round
        replies = list(replies)
        self._unanswered(rnd, replies, "train")
        accepted: dict[str, tuple[dict, dict]] = {}
        for reply in replies:
            name = self._sender(reply)
            arrays, metrics, problem = self._unpack(reply, is_train=True)
            if problem:
                self.core.reject(rnd, name, problem, "train")
                continue
            traffic = self._traffic(rnd)
            uploaded = next(iter(reply.content.array_records.values()))
            traffic["train_up_bytes"] = traffic.get("train_up_bytes", 0) + int(uploaded.count_bytes())
            accepted[name] = (arrays, metrics)
        new_global, summary = self.core.aggregate(rnd, accepted)
        if new_global is None:
            return None, None
        # Flower prints this record every round: keep it to what a user reads (metrics.json has all)
        return rec.to_record(new_global), MetricRecord(summary)

    def aggregate_evaluate(self, server_round, replies):
        """Keep each client's rank-1/5/10 and mAP; checkpoint the finished round."""
        rnd = self.offset + server_round
        replies = list(replies)
        self._unanswered(rnd, replies, "evaluate")
        for reply in replies:
            name = self._sender(reply)
            _, metrics, problem = self._unpack(reply, is_train=False)
            if problem:
                self.core.reject(rnd, name, problem, "evaluate")
                continue
            self.core.record_evaluation(rnd, name, metrics)
        self.core.finish_round(rnd, time.time() - self._round_started)
        return None
