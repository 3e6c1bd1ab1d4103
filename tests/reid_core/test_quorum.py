"""stop_waiting: when a phase goes on without the edges that have not answered."""

import pytest

from reid_core.federation.quorum import stop_waiting


def wait(elapsed=10.0, pending=1, answered=2, quorum=2, timeout=100.0, grace=5.0, quiet=0.0):
    return stop_waiting(elapsed, pending, answered, quorum, timeout, grace, quiet)


def test_stops_when_every_edge_answered_even_without_a_quorum():
    assert wait(pending=0, answered=0, quorum=3)


def test_stops_at_the_timeout_even_below_the_quorum():
    assert wait(elapsed=100.0, answered=0)
    assert not wait(elapsed=99.9, answered=0)


@pytest.mark.parametrize("quiet, stops", [(0.0, False), (4.9, False), (5.0, True), (30.0, True)])
def test_with_its_quorum_a_phase_goes_on_after_a_quiet_spell_of_grace(quiet, stops):
    assert wait(quiet=quiet) is stops


def test_no_grace_waits_for_every_edge_or_the_timeout():
    assert not wait(grace=None, quiet=1000.0)
    assert wait(grace=None, elapsed=100.0)


def test_below_the_quorum_the_grace_does_not_apply():
    # Error replies (a node declared gone) do not count: 1 answer of the 2 needed.
    assert not wait(answered=1, quorum=2, quiet=60.0)


def test_zero_grace_goes_on_as_soon_as_the_quorum_answered():
    assert wait(grace=0.0, quiet=0.0)


def test_no_timeout_waits_for_the_quorum_and_a_quiet_spell():
    assert not wait(timeout=None, elapsed=1e9, answered=1, quiet=1e9)
    assert wait(timeout=None, elapsed=1e9, quiet=5.0)
