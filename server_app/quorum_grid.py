"""A Grid whose phases go on once `min_clients` answered and nobody answered for `grace` s.

Flower's `Grid.send_and_receive` waits for every reply or the timeout. Here the same push and
pull, with `reid_core.federation.quorum.stop_waiting` deciding when to stop: a killed edge
(declared gone by the SuperLink only after two missed heartbeats) or a straggler no longer holds
the whole round. Name queries too: a node that did not tell its name gets no training that round
and is asked again the next, so a dead node still listed (a new ServerApp asks every listed node)
does not hold the round while the live edges wait to train.

The pull runs in a worker thread: Flower's `pull_messages` retries the objects of a reply whose
sender was killed mid-upload until the SuperLink's object session expires (about 150 s here),
and the round would wait that long whatever the quorum. A pull still running when the phase
stops is left behind; what it brings is not awaited (those edges count as unanswered).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flwr.app import Message, MessageType
from flwr.serverapp import Grid

from reid_core.federation.quorum import stop_waiting

QUORUM_PHASES = (MessageType.TRAIN, MessageType.EVALUATE, MessageType.QUERY)


class QuorumGrid:
    """Wraps a Grid; everything but `send_and_receive` goes to the wrapped one."""

    def __init__(self, grid: Grid, quorum: int, grace: float, poll_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 pull_wait_s: float = 0.5) -> None:
        self._grid, self.quorum, self.grace, self.poll_s = grid, quorum, grace, poll_s
        self._clock, self._sleep, self.pull_wait_s = clock, sleep, pull_wait_s

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        grace = self.grace if messages and all(m.metadata.message_type in QUORUM_PHASES for m in messages) else None
        pending = set(self._grid.push_messages(messages))
        start = last_reply = self._clock()
        replies: list[Message] = []
        puller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-pull")
        pull: Future | None = None
        try:
            while True:
                if pull is None:
                    pull = puller.submit(lambda ids=list(pending): list(self._grid.pull_messages(ids)))
                got: list[Message] = []
                if wait([pull], timeout=self.pull_wait_s).done:
                    got, pull = pull.result(), None
                replies.extend(got)
                pending.difference_update(m.metadata.reply_to_message_id for m in got)
                now = self._clock()
                if got:
                    last_reply = now
                answered = sum(not m.has_error() for m in replies)
                if stop_waiting(now - start, len(pending), answered, self.quorum, timeout, grace, now - last_reply):
                    return replies
                self._sleep(self.poll_s)
        finally:
            puller.shutdown(wait=False, cancel_futures=True)  # a stuck pull is left to end by itself
