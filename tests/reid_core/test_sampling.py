"""Which edges train a round: every edge, or a share drawn by name from the seed and the round."""

import pytest

from reid_core.federation.sampling import train_sample

NAMES = [f"edge{i:02d}" for i in range(16)]


def test_every_edge_at_fraction_one_sorted_and_once():
    assert train_sample(["b", "a", "c", "a"], 1.0, seed=0, rnd=1) == ["a", "b", "c"]


def test_a_share_is_ceil_of_the_fraction_and_at_least_least():
    assert len(train_sample(NAMES, 0.5, seed=0, rnd=1)) == 8
    assert len(train_sample(NAMES, 0.3, seed=0, rnd=1)) == 5      # ceil(4.8)
    assert len(train_sample(NAMES, 0.1, seed=0, rnd=1, least=4)) == 4
    assert train_sample(NAMES[:3], 0.1, seed=0, rnd=1, least=5) == NAMES[:3]  # fewer online than least: all


def test_the_draw_depends_on_names_seed_and_round_only():
    one = train_sample(NAMES, 0.5, seed=3, rnd=2)
    assert one == train_sample(list(reversed(NAMES)), 0.5, seed=3, rnd=2)  # not on the order nodes came in
    assert one == sorted(one) and set(one) <= set(NAMES)
    rounds = {tuple(train_sample(NAMES, 0.5, seed=3, rnd=r)) for r in range(1, 11)}
    seeds = {tuple(train_sample(NAMES, 0.5, seed=s, rnd=2)) for s in range(10)}
    assert len(rounds) > 5 and len(seeds) > 5
    # every edge trains now and then: over 10 rounds of half the edges
    assert set().union(*rounds) == set(NAMES)


@pytest.mark.parametrize(("fraction", "least", "message"), [(0.0, 1, "fraction"), (1.5, 1, "fraction"),
                                                            (0.5, 0, "least")])
def test_bad_arguments_are_named(fraction, least, message):
    with pytest.raises(ValueError, match=message):
        train_sample(NAMES, fraction, seed=0, rnd=1, least=least)
