"""Tests for reid_core.personalization.personalized_epoch: Personalized Epoch rules on hand-made sequences."""

from __future__ import annotations

import pytest

from reid_core.config.schema import EarlyStopConfig
from reid_core.personalization.personalized_epoch import EarlyStopper, plateau_rule, precision_rule, trend_rule


@pytest.mark.parametrize(
    ("correct", "sizes", "expected"),
    [
        ([15, 16], [16, 16], True),  # second batch all correct
        ([15, 15, 15], [16, 16, 16], False),  # running 0.9375
        ([31], [32], True),  # running 0.969 > 0.95
        ([19], [20], False),  # exactly 0.95 is not above
        ([31, 0], [32, 32], True),  # fired at batch 1; the flag latches
        ([0, 99], [1, 100], True),  # sample-weighted 99/101 (mean of batch precisions: 0.495)
        ([10, 79], [20, 80], False),  # 89/100
        ([], [], False),
    ],
)
def test_precision_rule(correct, sizes, expected):
    assert precision_rule(correct, sizes, 0.95) is expected


@pytest.mark.parametrize(("correct", "sizes"), [([1], [1, 2]), ([3], [2]), ([0], [0])])
def test_precision_rule_rejects(correct, sizes):
    with pytest.raises(ValueError):
        precision_rule(correct, sizes, 0.95)


@pytest.mark.parametrize(
    ("losses", "patience", "expected"),
    [
        ([1.0, 0.5, 0.499], 1, True),  # 0.2% improvement < 1%
        ([1.0, 0.5], 1, False),  # 50% improvement
        ([1.0], 1, False),  # not enough epochs
        ([1.0, 0.5, 0.499, 0.6], 2, True),  # 0.2%, then worse than the best
        ([1.0, 0.5, 0.499, 0.45], 2, False),  # last epoch improved 9.8%
        ([1.0, 0.5, 0.499], 2, False),  # epoch 1 improved 50%
    ],
)
def test_plateau_rule(losses, patience, expected):
    assert plateau_rule(losses, patience, 0.01) is expected


def test_plateau_rule_rejects_zero_patience():
    with pytest.raises(ValueError, match="patience"):
        plateau_rule([1.0, 1.0], 0, 0.01)


@pytest.mark.parametrize(
    ("losses", "window", "expected"),
    [
        ([4.0, 3.0, 2.0, 1.0], 2, False),  # means 3.5 then 1.5: a 57% drop
        ([2.0, 2.0, 1.99, 1.99], 2, True),  # 2.0 -> 1.99: 0.5% < 3%
        ([2.0, 2.0, 1.9, 1.9], 2, False),  # 5% drop
        ([2.0, 1.8, 2.2, 1.8], 2, True),  # noisy, no trend: 2.0 -> 2.0
        ([9.0, 2.0, 2.0, 1.9, 1.9], 2, False),  # only the last 2 * window epochs count
        ([2.0, 1.0, 1.0], 2, False),  # not enough epochs
        ([2.0, 2.0, 2.0, 2.1, 2.1, 2.1], 3, True),  # worse is no progress
    ],
)
def test_trend_rule(losses, window, expected):
    assert trend_rule(losses, window, 0.03) is expected


def test_trend_rule_rejects_zero_window():
    with pytest.raises(ValueError, match="window"):
        trend_rule([1.0, 1.0], 0, 0.03)


def run_epochs(stopper: EarlyStopper, epochs: list[list[tuple[int, int, float]]]) -> list[bool]:
    decisions = []
    for batches in epochs:
        for correct, size, loss in batches:
            stopper.update_batch(correct, size, loss)
        decisions.append(stopper.end_epoch())
    return decisions


def test_rule_none_runs_all_epochs():
    stopper = EarlyStopper(EarlyStopConfig(rule="none"), max_epochs=3)
    assert run_epochs(stopper, [[(16, 16, 0.1)]] * 3) == [False, False, True]
    assert stopper.epochs_run == 3 and not stopper.stopped_early


def test_precision_stopper_stops_after_confident_epoch():
    stopper = EarlyStopper(EarlyStopConfig(rule="precision"), max_epochs=5)
    decisions = run_epochs(stopper, [[(8, 16, 2.0), (9, 16, 1.8)], [(10, 16, 1.0), (16, 16, 0.5)]])
    assert decisions == [False, True]
    assert stopper.epochs_run == 2 and stopper.stopped_early
    assert stopper.epoch_losses == [pytest.approx(1.9), pytest.approx(0.75)]
    assert stopper.epoch_precisions == [pytest.approx(17 / 32), pytest.approx(26 / 32)]


def test_min_epochs_delays_the_stop():
    stopper = EarlyStopper(EarlyStopConfig(rule="precision", min_epochs=2), max_epochs=5)
    assert run_epochs(stopper, [[(16, 16, 0.1)], [(16, 16, 0.1)]]) == [False, True]


def test_precision_state_resets_each_epoch():
    """Only the closing epoch's batches count: a perfect epoch 1 does not stop epoch 2."""
    stopper = EarlyStopper(EarlyStopConfig(rule="precision", min_epochs=2), max_epochs=3)
    assert run_epochs(stopper, [[(16, 16, 0.1)], [(1, 16, 0.1)]]) == [False, False]


def test_plateau_stopper():
    stopper = EarlyStopper(EarlyStopConfig(rule="plateau", patience=1, min_delta=0.01), max_epochs=10)
    assert run_epochs(stopper, [[(0, 4, 2.0)], [(0, 4, 1.0)], [(0, 4, 0.999)]]) == [False, False, True]
    assert stopper.stopped_early


def test_trend_stopper_waits_for_min_epochs():
    config = EarlyStopConfig(rule="trend", window=1, min_delta=0.03, min_epochs=3)
    stopper = EarlyStopper(config, max_epochs=10)
    # the rule fires from epoch 2 on (flat loss); min_epochs holds it to epoch 3
    assert run_epochs(stopper, [[(0, 4, 1.0)]] * 3) == [False, False, True]
    assert stopper.stopped_early and stopper.epochs_run == 3


@pytest.mark.parametrize(("window", "max_epochs", "expected"), [(None, 16, 3), (None, 4, 1), (None, 10, 2), (2, 16, 2)])
def test_trend_window_is_a_fifth_of_the_round_unless_set(window, max_epochs, expected):
    assert EarlyStopper(EarlyStopConfig(rule="trend", window=window), max_epochs).window == expected


def test_stop_at_max_epochs_is_not_early():
    stopper = EarlyStopper(EarlyStopConfig(rule="precision"), max_epochs=1)
    assert run_epochs(stopper, [[(16, 16, 0.1)]]) == [True]
    assert not stopper.stopped_early


@pytest.mark.parametrize(("rule", "max_epochs", "message"), [("loss", 3, "rule"), ("none", 0, "max_epochs")])
def test_stopper_rejects_bad_config(rule, max_epochs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopper(EarlyStopConfig(rule=rule), max_epochs=max_epochs)


def test_update_batch_rejects_bad_counts():
    stopper = EarlyStopper(EarlyStopConfig(), max_epochs=1)
    with pytest.raises(ValueError):
        stopper.update_batch(5, 4, 0.1)
