"""Ablation over seeds: per-seed folders and overrides, mean +- std tables, win counts."""

from __future__ import annotations

import csv

import pytest

from lab.ablation import AblationPlan, run_ablation
from lab.ablation_seeds import parse_seeds, seed_plan, seeds_rows, wins, write_seed_summary

from test_ablation import CLIENTS, FakeRunner, _plan


def _results(fed_a: float, base_a: float) -> dict:
    """Two variants on clients a and b (b = a + 10), final rank-1 as given, mAP = rank-1 / 2."""
    def m(r1: float) -> dict:
        return {"final": {c: {"rank1": r1 + d, "mAP": (r1 + d) / 2} for c, d in (("a", 0.0), ("b", 10.0))},
                "rounds": [{"round": 1, "clients": {"a": {"epochs": 2, "time-compute": 3.0}}}]}
    return {"baseline": m(base_a), "fedureid": m(fed_a)}


@pytest.mark.parametrize("text, seeds", [("[0,1,2]", (0, 1, 2)), ("3", (3,)), (" 1, 5 ", (1, 5))])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, match", [("[0,x]", "integers"), ("[]", "at least one"), ("[1,1]", "duplicates")])
def test_parse_seeds_refuses_bad_lists_naming_the_key(text, match):
    with pytest.raises(ValueError, match=f"seeds: .*{match}"):
        parse_seeds(text)


def test_seed_plan_has_its_own_folder_and_replaces_any_seed_override(tmp_path):
    plan = AblationPlan(run_dir=tmp_path, experiment="smoke", overrides=("rounds=2", "seed=9"),
                        clients=CLIENTS, data_root=str(tmp_path), rounds=2)
    p = seed_plan(plan, 1)
    assert p.run_dir == tmp_path / "seed_1"
    assert p.overrides == ("rounds=2", "seed=1")


def test_seed_runs_get_the_seed_and_their_own_dirs(tmp_path):
    runner = FakeRunner()
    for s in (0, 1):
        run_ablation(seed_plan(_plan(tmp_path, variants=("baseline",)), s), runner)
    dirs = [dict(a.split("=", 1) for a in c[1:])["run_dir"] for c in runner.calls]
    assert dirs == [str(tmp_path / "abl" / f"seed_{s}" / "baseline") for s in (0, 1)]
    assert [c[-3] for c in runner.calls] == ["seed=0", "seed=1"]


def test_rows_are_mean_and_sample_std_over_seeds():
    per_seed = {0: _results(40.0, 30.0), 1: _results(44.0, 30.0), 2: _results(42.0, 36.0)}
    rows = {r[0]: r for r in seeds_rows(per_seed, CLIENTS, "rank1")}
    name, a, b, mean, n = rows["fedureid"]
    assert a == pytest.approx((42.0, 2.0)) and b == pytest.approx((52.0, 2.0))
    assert mean == pytest.approx((47.0, 2.0)) and n == 3
    assert rows["baseline"][1] == pytest.approx((32.0, 12 ** 0.5))
    assert wins(per_seed, CLIENTS, "rank1") == {"a": (3, 3), "b": (3, 3)}
    assert wins({0: _results(30.0, 30.0)}, CLIENTS, "mAP") == {"a": (0, 1), "b": (0, 1)}  # a tie is no win


def test_summary_files_and_a_seed_missing_a_variant(tmp_path):
    per_seed = {0: _results(40.0, 30.0), 1: {"baseline": _results(0.0, 34.0)["baseline"]}}
    files = write_seed_summary(tmp_path, per_seed, CLIENTS, ["- setup"], failed={0: [], 1: ["fedureid"]})
    assert {f.name for f in files} >= {"ablation_seeds_rank1.md", "ablation_seeds_mAP.csv", "ablation.md"}
    md = (tmp_path / "ablation.md").read_text()
    assert "Failed or incomplete (left out): seed 1: fedureid" in md
    assert "[seed 0](seed_0/ablation.md)" in md and "[seed 1](seed_1/ablation.md)" in md
    assert "| fedureid | 40.0 ± 0.0 | 50.0 ± 0.0 | 45.0 ± 0.0 | 1 |" in md
    assert "| baseline | 32.0 ± 2.8 | 42.0 ± 2.8 | 37.0 ± 2.8 | 2 |" in md
    assert "fedureid > baseline in a: 1/1 seeds, b: 1/1 seeds" in md
    with open(tmp_path / "ablation_seeds_rank1.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["method", "a_mean", "a_std", "b_mean", "b_std", "mean_mean", "mean_std", "seeds"]
    assert rows[2] == ["fedureid", "40.00", "0.00", "50.00", "0.00", "45.00", "0.00", "1"]


def _faked_cli(tmp_path, monkeypatch, *extra):
    """`fedureid ablation` on clients a, b with every run faked: (cli, runner, run_dir, args)."""
    from fedureid import cli
    from lab import cli as experiments

    runner = FakeRunner()
    monkeypatch.setattr(experiments, "_subprocess_runner", runner)
    run_dir = tmp_path / "abl"
    for client in ("a", "b"):  # client folders of their own: the runs themselves are faked
        (tmp_path / "data" / client).mkdir(parents=True, exist_ok=True)
    args = ["ablation", "experiment=smoke", f"run_dir={run_dir}", f"data.root={tmp_path / 'data'}",
            "data.synth_preset=null", "data.clients=[a,b]", "variants=[baseline,fedureid]", *extra]
    return cli, runner, run_dir, args


def test_cli_runs_one_ablation_per_seed_then_the_summary(tmp_path, monkeypatch, capsys):
    cli, runner, run_dir, args = _faked_cli(tmp_path, monkeypatch, "seeds=[0,1]", "examples=0")
    assert cli.main(args) == 0
    assert sorted(c[-3] for c in runner.calls) == ["seed=0", "seed=0", "seed=1", "seed=1"]
    for s in (0, 1):
        assert (run_dir / f"seed_{s}" / "ablation_rank1.csv").exists()
    out = capsys.readouterr().out
    assert "# Ablation over seeds" in out and "| fedureid | 40.0 ± 0.0 | 50.0 ± 0.0 | 45.0 ± 0.0 | 2 |" in out
    assert cli.main(args) == 0 and len(runner.calls) == 4  # complete: nothing rerun
    with pytest.raises(SystemExit, match="seed=S or seeds"):
        cli.main([*args, "seed=3"])
    assert cli.main([*args[:-2], "seeds=[0,zero]"]) == 2
    assert "seeds: expected a list of integers" in capsys.readouterr().err


def test_cli_without_seeds_keeps_one_ablation_in_run_dir(tmp_path, monkeypatch, capsys):
    cli, runner, run_dir, args = _faked_cli(tmp_path, monkeypatch, "seed=4")
    assert cli.main(args) == 0
    assert all("seed=4" in c for c in runner.calls) and len(runner.calls) == 2 and not (run_dir / "seed_4").exists()
    assert (run_dir / "ablation_rank1.csv").exists() and not (run_dir / "ablation_seeds_rank1.csv").exists()
    # the fake runs hold no checkpoint: the examples are skipped with a warning, the tables stay
    assert "retrieval examples not rendered" in capsys.readouterr().err
