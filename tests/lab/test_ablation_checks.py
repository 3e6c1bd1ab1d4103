"""Round curves over seeds and FedUReID's learning checks, on hand-made metrics."""

from __future__ import annotations

import math

from lab.ablation_checks import (
    checks_markdown,
    curves_markdown,
    learner_checks,
    learning_checks,
    round_curve,
    round_value,
    untrained,
)


def run(curves: dict[str, list[float]], with_initial: bool = True) -> dict:
    """metrics.json of one variant: per client, rank-1 after rounds 0..R (mAP = rank-1 / 2)."""
    rounds = len(next(iter(curves.values()))) - 1
    recs = [{"round": r, "clients": {c: {"rank1": v[r], "mAP": v[r] / 2} for c, v in curves.items()}}
            for r in range(1, rounds + 1)]
    out = {"rounds": recs, "final": {c: {"rank1": v[-1], "mAP": v[-1] / 2} for c, v in curves.items()}}
    if with_initial:
        out["initial"] = {c: {"rank1": v[0], "mAP": v[0] / 2} for c, v in curves.items()}
    return out


def test_round_values_and_curve_over_seeds() -> None:
    s0 = {"fedureid": run({"a": [10, 20, 30], "b": [0, 4, 2]})}
    s1 = {"fedureid": run({"a": [10, 30, 20], "b": [0, 6, 4]})}
    per_seed = {0: s0, 1: s1}
    assert round_value(s0["fedureid"], 0, "a", "rank1") == 10
    assert math.isnan(round_value(s0["fedureid"], 5, "a", "rank1"))
    # round 1: a (20+30)/2 = 25, b (4+6)/2 = 5 -> 15; round 2: a 25, b 3 -> 14
    assert round_curve(per_seed, "fedureid", ["a", "b"], 2) == [5.0, 15.0, 14.0]
    text = curves_markdown(per_seed, ["a", "b"], 2)
    assert "| fedureid | 5.0 | 15.0 | 14.0 | 1 | 1.0 |" in text


def test_checks_pass_and_fail_where_they_should() -> None:
    seed = {
        "standalone": run({"a": [10, 11, 12], "b": [0, 1, 1]}, with_initial=False),
        "baseline": run({"a": [10, 15, 14], "b": [0, 2, 3]}),
        "fedureid": run({"a": [10, 16, 16], "b": [0, 5, 4.5]}),
    }
    rows = learning_checks({0: seed}, ["a", "b"], rounds=2)
    assert all(ok for _, _, ok in rows), rows
    assert len(rows) == 6
    assert untrained({0: seed}, "a", "rank1") == 10  # standalone has no round 0; taken from the others

    eroded = dict(seed, fedureid=run({"a": [10, 20, 12], "b": [0, 5, 0]}))  # b back to its round 0; best-final 6.5
    rows = {check: (measured, ok) for check, measured, ok in learning_checks({0: eroded}, ["a", "b"], rounds=2)}
    untrained_row = next(v for k, v in rows.items() if "untrained" in k)
    assert untrained_row == ("not above: b rank1, b mAP", False)
    erosion = next(v for k, v in rows.items() if k.startswith("no erosion"))
    assert erosion == ("final 6.0, best 12.5", False)
    standalone_row = next(v for k, v in rows.items() if "standalone" in k)
    assert standalone_row == ("not above on a, b", False)  # a ties standalone (12): a tie is not above
    clients_row = next(v for k, v in rows.items() if "at least" in k)
    assert clients_row == ("0 (none)", False)  # a 12 < 14, b 0 < 3
    assert "| no |" in checks_markdown(list(learning_checks({0: eroded}, ["a", "b"], 2)))


def test_missing_variants_are_said_not_guessed() -> None:
    only = {0: {"fedureid": run({"a": [1, 2]})}}
    rows = learning_checks(only, ["a"], rounds=1)
    assert ("fedureid above baseline", "baseline not run", None) in rows
    assert "| - |" in checks_markdown(rows)
    assert learning_checks({0: {"baseline": run({"a": [1, 2]})}}, ["a"], 1) == []


def test_cc_rows_get_their_own_checks_and_the_learner_bar() -> None:
    """cc_fedureid is checked against cc_baseline / cc_standalone, and against BUC FedUReID
    for the cluster-contrast bar: mean mAP >= 1.5x at a wall time at most 10% above."""
    buc = dict(run({"a": [10, 20, 20], "b": [0, 4, 4]}), wall_s_simulate=1000.0)  # mean mAP (10 + 2) / 2 = 6
    cc = dict(run({"a": [10, 30, 30], "b": [0, 6, 6]}), wall_s_simulate=1050.0)  # (15 + 3) / 2 = 9 = 1.5x
    seed = {"fedureid": buc, "cc_fedureid": cc, "cc_standalone": dict(run({"a": [10, 25, 25], "b": [0, 7, 7]}))}
    rows = {check: (measured, ok) for check, measured, ok in learner_checks({0: seed}, ["a", "b"])}
    assert rows["cc_fedureid mean mAP at least 1.5x fedureid's"] == ("9.0 vs 6.0 (1.50x)", True)
    assert rows["cc_fedureid wall time at most fedureid's + 10%"] == ("1050 s vs 1000 s (1.05x)", True)
    slow = dict(seed, cc_fedureid=dict(cc, wall_s_simulate=1200.0))
    assert [ok for _, _, ok in learner_checks({0: slow}, ["a", "b"])] == [True, False]
    cc_rows = {c: (m, ok) for c, m, ok in learning_checks({0: seed}, ["a", "b"], 2, "cc_fedureid", "cc_baseline",
                                                          "cc_standalone")}
    assert cc_rows["cc_fedureid above cc_standalone in rank-1 on every client"] == ("not above on b", False)
    assert learner_checks({0: {"cc_fedureid": cc}}, ["a", "b"]) == []  # no BUC row: nothing to compare


def test_learner_bar_with_a_zero_reference_reports_instead_of_raising() -> None:
    """A BUC row at 0 mAP (or without a wall time) is said in the table, not a ZeroDivisionError."""
    buc = dict(run({"a": [0, 0, 0]}), wall_s_simulate=0.0)
    cc = dict(run({"a": [0, 5, 5]}), wall_s_simulate=100.0)
    rows = learner_checks({0: {"fedureid": buc, "cc_fedureid": cc}}, ["a"])
    assert rows[0][1] == "2.5 vs 0.0 (reference 0)" and rows[0][2] is True
    assert rows[1][1] == "100 s vs 0 s (reference 0)" and rows[1][2] is False
    timeless = dict(cc)
    del timeless["wall_s_simulate"]
    rows = learner_checks({0: {"fedureid": buc, "cc_fedureid": timeless}}, ["a"])
    assert "missing" in rows[1][1] and rows[1][2] is None


def test_norm_ratios_over_the_rounds_median(capsys, tmp_path):
    import json

    from lab.norm_ratios import main, ratios

    metrics = {"rounds": [{"round": 1, "clients": {"a": {"change_norm": 1.0}, "b": {"change_norm": 2.0},
                                                   "c": {"change_norm": 6.0}, "d": {"rank1": 3.0}}}]}
    assert ratios(metrics) == {1: {"a": 0.5, "b": 1.0, "c": 3.0}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main([str(tmp_path)]) == 0
    assert "largest honest ratio: 3.00x" in capsys.readouterr().out
