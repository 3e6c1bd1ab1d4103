"""At most N edges computing at once on one host: co-located SuperNodes share its cores.

Every message starts a ClientApp process; sixteen edges on a 2-core host that all import
torch and train at once starve their SuperNodes' heartbeat threads, and the SuperLink declares
live edges gone. Each edge given the same folder (node config `compute-slots-dir`) holds one of
`compute-slots` lock files while it computes and waits for a free one otherwise. The operating
system releases the lock when a process dies, so a killed edge frees its slot.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def compute_slot(directory: str | None, slots: int = 1, poll_s: float = 0.2) -> Iterator[int | None]:
    """Hold one of `slots` lock files in `directory` (None or empty: no limit); yields its index."""
    if not directory:
        yield None
        return
    if slots < 1:
        raise ValueError(f"compute-slots must be >= 1, got {slots}")
    os.makedirs(directory, exist_ok=True)
    while True:
        for i in range(slots):
            handle = open(os.path.join(directory, f"slot{i}.lock"), "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield i
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(poll_s)
