"""QuorumGrid: with min_clients answered, a train, evaluate or query phase goes on after `grace` quiet seconds."""

from __future__ import annotations

import threading
import time

import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from server_app.quorum_grid import QuorumGrid


@pytest.fixture(autouse=True)
def _run_identity():
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    yield


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class ScheduledGrid:
    """Push/pull like Flower's Grid; node n answers at reply_at[n] s (None: never; 'error': gone)."""

    def __init__(self, clock: Clock, reply_at: dict) -> None:
        self.clock, self.reply_at, self.sent, self.pulls = clock, reply_at, {}, 0

    def push_messages(self, messages):
        ids = []
        for i, m in enumerate(messages):
            m.metadata.__dict__["_message_id"] = f"m{i}"
            self.sent[f"m{i}"] = m
            ids.append(f"m{i}")
        return ids

    def pull_messages(self, message_ids):
        self.pulls += 1
        out = []
        for mid in list(message_ids):
            msg, at = self.sent[mid], self.reply_at[self.sent[mid].metadata.dst_node_id]
            if at is None or self.clock() < at[0]:
                continue
            out.append(Message(at[1], reply_to=msg) if isinstance(at[1], RecordDict) else msg.create_error_reply(at[1]))
        return out

    def get_node_ids(self):
        return list(self.reply_at)


def messages(kind: str, nodes) -> list[Message]:
    return [Message(RecordDict({"c": ConfigRecord({"x": 1})}), message_type=kind, dst_node_id=n) for n in nodes]


def ok(at: float):
    return (at, RecordDict({"c": ConfigRecord({"ok": 1})}))


def run(reply_at: dict, kind=MessageType.TRAIN, quorum=2, grace=10.0, timeout=600.0):
    clock = Clock()
    grid = ScheduledGrid(clock, reply_at)
    # pulls here answer at once: a generous real wait keeps the fake clock's timings exact
    quorum_grid = QuorumGrid(grid, quorum=quorum, grace=grace, poll_s=1.0, clock=clock, sleep=clock.sleep,
                             pull_wait_s=5.0)
    replies = quorum_grid.send_and_receive(messages(kind, list(reply_at)), timeout=timeout)
    return sorted(r.metadata.reply_to_message_id for r in replies), clock.t


def test_every_edge_answers_returns_at_once():
    ids, t = run({1: ok(2), 2: ok(3), 3: ok(4)})
    assert ids == ["m0", "m1", "m2"] and t == 4.0


def test_a_dead_edge_is_left_after_the_grace_once_the_quorum_answered():
    ids, t = run({1: ok(2), 2: ok(3), 3: None})
    assert ids == ["m0", "m1"] and t == 13.0  # quorum at 3 s, + 10 s grace


def test_a_straggler_inside_the_grace_is_waited_for():
    ids, t = run({1: ok(2), 2: ok(3), 3: ok(9)})
    assert ids == ["m0", "m1", "m2"] and t == 9.0


def test_edges_answering_one_after_another_are_all_waited_for():
    # each answers within the grace of the one before (edges queued for compute slots), the last never
    ids, t = run({1: ok(2), 2: ok(3), 3: ok(12), 4: ok(21), 5: None})
    assert ids == ["m0", "m1", "m2", "m3"] and t == 31.0


def test_error_replies_do_not_make_the_quorum():
    from flwr.app import Error
    ids, t = run({1: ok(2), 2: (5, Error(code=0, reason="node unavailable")), 3: None}, timeout=100.0)
    assert ids == ["m0", "m1"] and t == 100.0  # one real answer of two needed: the timeout ends it


def test_name_queries_go_on_after_the_grace_once_the_quorum_answered():
    ids, t = run({1: ok(2), 2: ok(3), 3: None}, kind=MessageType.QUERY)
    assert ids == ["m0", "m1"] and t == 13.0  # a dead node still listed: quorum at 3 s, + 10 s grace


def test_other_messages_wait_for_every_edge():
    # a sub-type (as SecAgg+ stages send) is not one of the quorum phases
    ids, t = run({1: ok(2), 2: ok(3), 3: ok(40)}, kind=f"{MessageType.TRAIN}.stage")
    assert ids == ["m0", "m1", "m2"] and t == 40.0


class HalfUploadGrid(ScheduledGrid):
    """From `stuck_at` s on, a pull that includes node 3's message hangs (its sender died mid-upload)."""

    def __init__(self, clock: Clock, reply_at: dict, stuck_at: float) -> None:
        super().__init__(clock, reply_at)
        self.stuck_at, self.release = stuck_at, threading.Event()

    def pull_messages(self, message_ids):
        ids = list(message_ids)
        if self.clock() >= self.stuck_at and "m2" in ids:
            self.release.wait(timeout=30)  # Flower retries the missing objects until the session expires
            return []
        return super().pull_messages(ids)


def test_a_pull_stuck_on_a_half_uploaded_reply_does_not_hold_the_phase():
    clock = Clock()
    grid = HalfUploadGrid(clock, {1: ok(2), 2: ok(3), 3: None}, stuck_at=4)
    quorum_grid = QuorumGrid(grid, quorum=2, grace=10.0, poll_s=1.0, clock=clock, sleep=clock.sleep, pull_wait_s=0.01)
    started = time.monotonic()
    try:
        replies = quorum_grid.send_and_receive(messages(MessageType.TRAIN, [1, 2, 3]), timeout=600.0)
    finally:
        grid.release.set()
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1"]
    assert clock.t == 13.0 and time.monotonic() - started < 10  # quorum at 3 s + 10 s grace, not the stuck pull


def test_other_calls_go_to_the_wrapped_grid():
    clock = Clock()
    assert QuorumGrid(ScheduledGrid(clock, {7: None, 8: None}), quorum=1, grace=0.0).get_node_ids() == [7, 8]
