"""Screening before aggregation: hand-worked cases of the weight bounds and the norm outliers."""

import numpy as np
import pytest

from reid_core.federation.screening import (bounded_count, capped_shares, change_norms, impossible_model, norm_outliers,
                                            screen_reasons)


def test_a_count_may_not_grow_past_its_first_accepted_by_more_than_the_factor():
    assert bounded_count(10_000_000, first=1_000, growth=2.0) == 2_000
    assert bounded_count(900, first=1_000, growth=2.0) == 900  # shrinking is honest enough
    assert bounded_count(10_000_000, first=None, growth=2.0) == 10_000_000  # first time: nothing to compare
    assert bounded_count(10_000_000, first=1_000, growth=0.0) == 10_000_000  # 0: no bound


def test_capped_shares_worked_by_hand():
    # 8 : 1 : 1 with cap 0.5 -> a at 0.5, b and c share the other 0.5 equally
    out = capped_shares({"a": 8.0, "b": 1.0, "c": 1.0}, cap=0.5)
    assert out == pytest.approx({"a": 5.0, "b": 2.5, "c": 2.5})
    # 6 : 3 : 1 with cap 0.4 -> a at 0.4; b would get 0.45 > 0.4 -> b at 0.4 too; c keeps 0.2
    out = capped_shares({"a": 6.0, "b": 3.0, "c": 1.0}, cap=0.4)
    assert out == pytest.approx({"a": 4.0, "b": 4.0, "c": 2.0})
    # under the cap: unchanged; cap 1: off; cap <= 1/n: equal shares
    assert capped_shares({"a": 1.0, "b": 1.0}, cap=0.6) == {"a": 1.0, "b": 1.0}
    assert capped_shares({"a": 9.0, "b": 1.0}, cap=1.0) == {"a": 9.0, "b": 1.0}
    assert capped_shares({"a": 9.0, "b": 1.0}, cap=0.5) == pytest.approx({"a": 5.0, "b": 5.0})


def test_change_norms_count_trained_weights_only():
    ref = {"w": np.zeros((2, 2), np.float32), "n": np.array(5, np.int64),
           "bn.running_mean": np.zeros(2, np.float32), "bn.running_var": np.ones(2, np.float32)}
    up = {"w": np.array([[3.0, 0.0], [0.0, 4.0]], np.float32), "n": np.array(900, np.int64),
          "bn.running_mean": np.full(2, 50.0, np.float32), "bn.running_var": np.full(2, 70.0, np.float32)}
    assert change_norms({"a": up}, {"a": ref}) == {"a": pytest.approx(5.0)}


def test_an_honest_jump_of_batchnorm_statistics_is_no_outlier():
    """Weights changed alike, one edge's first BatchNorm variance 4.5 -> 73 (as measured on the demo)."""
    ref = {"w": np.zeros(100, np.float32), "bn.running_var": np.full(16, 4.5, np.float32)}
    rng = np.random.default_rng(0)
    updates = {name: {"w": rng.normal(0, 1, 100).astype(np.float32), "bn.running_var": ref["bn.running_var"].copy()}
               for name in "abcde"}
    updates["e"]["bn.running_var"][0] = 73.0
    norms = change_norms(updates, dict.fromkeys(updates, ref))
    assert norm_outliers(norms, k=3.0) == {}
    assert max(norms.values()) / float(np.median(list(norms.values()))) < 1.5


def test_norm_outliers_against_the_rounds_median():
    norms = {"a": 1.0, "b": 1.2, "c": 0.9, "d": 40.0}
    out = norm_outliers(norms, k=5.0)
    assert list(out) == ["d"] and "median 1.1" in out["d"] and "36.4x" in out["d"]
    assert norm_outliers(norms, k=0.0) == {}  # off
    assert norm_outliers({"a": 1.0, "b": 40.0}, k=5.0) == {}  # two updates: no majority to judge by


def test_impossible_models_negative_variance_or_sent_back_unchanged():
    start = {"bn.running_var": np.array([1.0, 2.0], np.float32), "w": np.zeros(2, np.float32)}
    flipped = {"bn.running_var": np.array([-0.5, 2.0], np.float32), "w": np.ones(2, np.float32)}
    assert "1 negative BatchNorm variance(s) in bn.running_var" in impossible_model(flipped, start, 1.0)
    assert "unchanged" in impossible_model(start, start, 0.0)
    only_statistics = {"bn.running_var": np.array([1.5, 2.5], np.float32), "w": np.zeros(2, np.float32)}
    assert "unchanged" in impossible_model(only_statistics, start, 0.0)  # its weights' change norm is 0
    trained = {"bn.running_var": np.array([0.0, 3.0], np.float32), "w": np.ones(2, np.float32)}
    assert impossible_model(trained, start, 1.2) is None  # a variance of 0 can be trained


def test_an_impossible_update_does_not_pull_the_median_down():
    """A stale edge (change 0) beside three honest ones of different sizes, k = 3.

    Over all four the median is (1.0 + 1.5) / 2 = 1.25 and honest `a` stands 3.2x; over the
    three possible updates it is 1.5 and `a` stands 2.7x: only the stale edge is left out.
    """
    norms = {"a": 4.0, "b": 1.0, "c": 1.5, "d": 0.0}
    stale = {"d": "it sent back the weights it started from unchanged (nothing learnt)"}
    assert list(norm_outliers(norms, k=3.0)) == ["a"]  # what the median over every update would do
    assert screen_reasons(norms, stale, k=3.0) == stale
    assert list(screen_reasons({**norms, "a": 5.0}, stale, k=3.0)) == ["d", "a"]  # 3.3x the possible median
    assert screen_reasons(norms, {}, k=0.0) == {}  # off
