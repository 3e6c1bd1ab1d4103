"""`fedureid bench round`: wall time split into client compute and Flower overhead."""

from __future__ import annotations

import json

import pytest

from lab.bench.round import main, makespan, round_split, split_table


def test_makespan_longest_first_on_slots():
    assert makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0  # {3,2,2} and {3,2}
    assert makespan([5.0, 1.0, 1.0], 2) == 5.0
    assert makespan([1.0, 2.0, 3.0], 1) == 6.0
    assert makespan([], 2) == 0.0
    with pytest.raises(ValueError, match="slots"):
        makespan([1.0], 0)


def _record(rnd, wall):
    return {"round": rnd, "wall_s": wall, "clients": {
        "a": {"time-compute": 4.0, "time-eval": 1.0},
        "b": {"time-compute": 3.0, "time-eval": 0.5},
        "c": {"time-compute": 2.0, "time-eval": 0.5}}}


def test_round_split_hand_worked():
    s = round_split(_record(1, 20.0), slots=2)
    # train: {4} and {3,2} -> 5; eval: {1} and {0.5,0.5} -> 1; critical 6
    assert s["critical"] == 6.0 and s["sum"] == 11.0 and s["max"] == 5.0
    assert s["overhead"] == 14.0 and s["share"] == pytest.approx(0.7)
    assert round_split(_record(1, 20.0), slots=3)["critical"] == 5.0


def test_main_reads_existing_run(tmp_path, capsys):
    metrics = {"rounds": [_record(1, 20.0), _record(2, 10.0)], "experiment": "smoke", "algorithm": "fedureid",
               "clients": ["a", "b", "c"], "wall_s_simulate": 50.0}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main(["--run-dir", str(tmp_path), "--slots", "2"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | 20.0 | 11.0 | 5.0 | 6.0 | 14.0 | 70% |" in out
    assert "| all | 30.0 | 22.0 | | 12.0 | 18.0 | 60% |" in out
    assert "outside rounds" in out and "20.0 s" in out
    rows, _ = split_table(metrics, 2)
    assert [r["round"] for r in rows] == [1, 2]
