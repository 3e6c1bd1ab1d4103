"""Compute slots shared by co-located edges: at most N hold one; a freed slot is taken by a waiter."""

import threading
import time

import pytest

from reid_core.runtime.slots import compute_slot


def test_no_folder_no_limit():
    with compute_slot(None) as a, compute_slot("") as b:
        assert a is None and b is None


def test_at_most_n_hold_a_slot_and_a_waiter_gets_the_freed_one(tmp_path):
    held, events = [], []
    with compute_slot(str(tmp_path), 2) as a, compute_slot(str(tmp_path), 2) as b:
        assert {a, b} == {0, 1}

        def third():
            with compute_slot(str(tmp_path), 2, poll_s=0.01) as c:
                held.append(c)
                events.append(("got", time.monotonic()))

        t = threading.Thread(target=third)
        t.start()
        time.sleep(0.2)
        assert held == []  # both slots taken: it waits
        released = time.monotonic()
    t.join(timeout=5)
    assert held in ([0], [1]) and events[0][1] >= released


def test_slots_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="compute-slots"):
        with compute_slot(str(tmp_path), 0):
            pass
