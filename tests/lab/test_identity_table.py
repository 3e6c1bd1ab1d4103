"""lab.identity_table: the estimate beside the true count, per client of a run's last round."""

from __future__ import annotations

import json
from pathlib import Path

from lab.identity_table import main, mean_rows, rows


def _metrics() -> dict:
    first = {"a": {"diag-identities": 40, "identities-estimate": 50, "clusters": 90, "rank1": 10.0, "mAP": 12.0}}
    last = {"a": {"diag-identities": 40, "identities-estimate": 30, "identities-estimate-trusted": 1,
                  "clusters": 31, "rank1": 20.0, "mAP": 25.0},
            "b": {"diag-identities": 10, "clusters": 8, "rank1": 40.0, "mAP": 45.0}}  # fixed merging: no estimate
    return {"rounds": [{"round": 1, "clients": first}, {"round": 2, "clients": last}]}


def test_rows_show_the_error_and_trust_of_the_last_round():
    assert rows(_metrics()) == ["| a | 40 | 30 | -25% | yes | 31 | 20.0 | 25.0 |",
                                "| b | 10 | - | - | - | 8 | 40.0 | 45.0 |"]
    assert rows(_metrics(), round_no=1)[0] == "| a | 40 | 50 | +25% | - | 90 | 10.0 | 12.0 |"


def test_main_prints_the_means(tmp_path: Path, capsys):
    (tmp_path / "metrics.json").write_text(json.dumps(_metrics()))
    assert main([str(tmp_path)]) == 0
    assert "mean rank-1 30.0, mean mAP 35.0" in capsys.readouterr().out


def test_mean_rows_average_each_clients_estimate_over_the_runs():
    other = _metrics()
    other["rounds"][-1]["clients"]["a"].update({"identities-estimate": 35, "identities-estimate-trusted": 0})
    assert mean_rows([_metrics(), other]) == ["| a | 40 | 30 / 35 | 32.5 | -18.8% | 1 |",
                                              "| b | 10 | - / - | - | - | 0 |"]


def test_main_mean_prints_one_table(tmp_path: Path, capsys):
    for seed in (0, 1):
        (tmp_path / f"s{seed}").mkdir()
        (tmp_path / f"s{seed}" / "metrics.json").write_text(json.dumps(_metrics()))
    assert main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--mean"]) == 0
    assert "| a | 40 | 30 / 30 | 30.0 | -25.0% | 0 |" in capsys.readouterr().out
