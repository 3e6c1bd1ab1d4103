"""When a phase stops waiting for its edges (pure): all answered, the timeout passed, or the grace after a quorum.

An edge that dies mid-phase is declared gone by the SuperLink only after it misses two
heartbeats (up to a minute in Flower 1.42); a straggler on a slow machine may take far longer.
With `federation.grace` set, once `min_clients` edges have answered, a phase goes on without the
others as soon as no edge has answered for `grace` seconds (they are named as unanswered, as
after the timeout, and receive their personalised model next round). A quiet spell, not a fixed
wait after the quorum: edges that share compute slots answer one after another, and a live one
still queued for its slot must not be left out.
"""

from __future__ import annotations


def stop_waiting(elapsed: float, pending: int, answered: int, quorum: int, timeout: float | None,
                 grace: float | None, quiet: float) -> bool:
    """Whether a phase stops waiting now.

    elapsed: seconds since the messages were sent; pending: messages with no reply yet;
    answered: replies that are not errors; quorum: the answers a phase needs (min_clients);
    timeout: the phase's limit (None: none); grace: the quiet spell after which a phase with its
    quorum goes on (None: wait for every edge or the timeout); quiet: seconds since the last reply
    (or since the messages were sent, before any).
    """
    if pending <= 0:
        return True
    if timeout is not None and elapsed >= timeout:
        return True
    if grace is None or answered < quorum:
        return False
    return quiet >= grace
