"""An in-process Flower federation for fault and privacy tests.

The real ServerApp `main` (strategy, checkpoint, outputs) drives the real ClientApp
of each edge through `InProcessGrid`. Every message crosses Flower's own wire format
(deflate -> bytes -> inflate) and is recorded as its receiver got it, so tests can
inspect exactly what an edge sent. A message to an offline edge is answered the way a
SuperLink answers for a node that missed its heartbeats (flwr's own "node unavailable"
reply, sent as node 1). Edges run in a worker thread named after the edge, which lets
`LogCapture` tell server-side log records from edge-side ones.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents

import client_app.app as client_app_module

EDGE_THREAD_PREFIX = "edge-"

Tamper = Callable[[Message, Message], Message]  # (request as delivered, honest reply) -> reply sent


class ServerKilled(RuntimeError):
    """Raised inside the ServerApp to simulate its process dying."""


def over_the_wire(msg: Message) -> tuple[Message, int]:
    """Serialise `msg` with Flower's object format and rebuild it; returns (copy, bytes)."""
    contents = {oid: obj.deflate() for oid, obj in get_all_nested_objects(msg).items()}
    size = sum(len(c) for c in contents.values())
    copy = inflate_object_from_contents(msg.object_id, contents)
    return copy, size


@dataclass
class Edge:
    """One SuperNode: a stable client name, a (changeable) node_id and its Context."""

    name: str
    node_id: int
    context: Context
    online: bool = True
    tamper: Tamper | None = None
    mute: bool = False  # takes its messages and never answers (the server's phase times out on it)


@dataclass
class Exchange:
    """One message to an edge and what came back, each as its receiver got it."""

    edge: str
    node_id: int
    message_type: str
    server_round: int | None
    request: Message
    reply: Message
    reply_bytes: int = 0


@dataclass
class InProcessGrid(Grid):
    """A Grid whose nodes run `client_app.app.app` in this process, one message at a time."""

    edges: list[Edge]
    exchanges: list[Exchange] = field(default_factory=list)
    # Called before each train/evaluate batch is sent as (message_type, server_round); may
    # flip edges online/offline or raise ServerKilled.
    before_send: Callable[[str, int], None] | None = None
    # Called after a batch's replies arrived, before the ServerApp sees them.
    after_replies: Callable[[str, int], None] | None = None

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=EDGE_THREAD_PREFIX)
        self.pushed = 0  # messages sent through push_messages (a ServerApp with federation.grace)
        self._waiting: dict[str, Message] = {}

    def edge(self, name: str) -> Edge:
        return next(e for e in self.edges if e.name == name)

    # ---- Grid API -------------------------------------------------------------------
    def set_run(self, run) -> None:  # noqa: D102 (not used by the Message API strategies)
        pass

    @property
    def run(self):  # noqa: D102
        raise NotImplementedError

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # noqa: D102
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return [e.node_id for e in self.edges if e.online]

    def push_messages(self, messages):  # noqa: D102
        """Deliver now (as send_and_receive does); the replies wait for pull_messages."""
        messages = list(messages)
        self.pushed += len(messages)
        for reply in self.send_and_receive(messages):
            self._waiting[reply.metadata.reply_to_message_id] = reply
        return [m.metadata.message_id for m in messages]

    def pull_messages(self, message_ids):  # noqa: D102
        return [self._waiting.pop(i) for i in list(message_ids) if i in self._waiting]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        kinds = {m.metadata.message_type for m in messages}
        rnd = _server_round(messages[0]) if messages else None
        batch = next(iter(kinds)) if len(kinds) == 1 else "mixed"
        if self.before_send and rnd is not None:
            self.before_send(batch, rnd)
        replies = [self._deliver(msg) for msg in messages]
        mute = {e.node_id for e in self.edges if e.mute}
        replies = [r for m, r in zip(messages, replies) if m.metadata.dst_node_id not in mute]
        if self.after_replies and rnd is not None:
            self.after_replies(batch, rnd)
        return replies

    # ---- one message ------------------------------------------------------------------
    def _deliver(self, msg: Message) -> Message:
        by_node = {e.node_id: e for e in self.edges}
        edge = by_node.get(msg.metadata.dst_node_id)
        msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex  # the SuperLink assigns one
        delivered, _ = over_the_wire(msg)
        delivered.metadata.__dict__["_message_id"] = msg.metadata.message_id
        if edge is None or not edge.online:  # the SuperLink answers for it, in its own name (node 1)
            reply = create_message_error_unavailable_res_message(msg.metadata, "node_unavail")
            received, size, name = reply, 0, edge.name if edge else "?"
        else:
            name = edge.name
            reply = self._pool.submit(_in_edge_thread, delivered, edge).result()
            received, size = over_the_wire(reply)
        self.exchanges.append(Exchange(name, msg.metadata.dst_node_id, msg.metadata.message_type,
                                       _server_round(msg), delivered, received, size))
        return received

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _server_round(msg: Message) -> int | None:
    if not msg.has_content() or "config" not in msg.content.config_records:
        return None
    value = msg.content["config"].get("server-round")
    return None if value is None else int(value)


def _in_edge_thread(delivered: Message, edge: Edge) -> Message:
    threading.current_thread().name = EDGE_THREAD_PREFIX + edge.name  # tells LogCapture who logged
    return run_client_app(delivered, edge)


def run_client_app(delivered: Message, edge: Edge) -> Message:
    """What a SuperNode does: run the ClientApp; an exception becomes an error reply."""
    try:
        reply = client_app_module.app(delivered, edge.context)
    except Exception as ex:  # noqa: BLE001 (same wording as flwr's run_clientapp)
        reason = str(type(ex)) + ":<'" + str(ex) + "'>"
        return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=delivered)
    if edge.tamper is not None:
        reply = edge.tamper(delivered, reply)
    return reply


def edge_context(name: str, node_id: int, data_dir: Path, state_dir: Path, run_config: dict) -> Context:
    """A deployment-style SuperNode context (client-name, data-dir, state-dir)."""
    node_config = {"client-name": name, "data-dir": str(data_dir), "state-dir": str(state_dir)}
    return Context(run_id=1, node_id=node_id, node_config=node_config, state=RecordDict(),
                   run_config=dict(run_config))


def server_context(run_config: dict) -> Context:
    return Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=dict(run_config))


class LogCapture(logging.Handler):
    """Every log record (flwr's and ours, INFO and up), split by the thread that made it."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, edge_side: bool) -> str:
        lines = []
        for r in self.records:
            if r.threadName.startswith(EDGE_THREAD_PREFIX) == edge_side:
                lines.append(f"{r.name} {r.getMessage()}")
                if r.exc_info:
                    lines.append(logging.Formatter().formatException(r.exc_info))
        return "\n".join(lines)


@contextmanager
def capture_logs() -> Iterator[LogCapture]:
    root = logging.getLogger()
    handler, level = LogCapture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
