"""Ablation bookkeeping with a fake runner: tables, resumption, epochs, traffic, failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lab.ablation import (
    FEDERATED,
    VARIANTS,
    AblationPlan,
    federated_args,
    is_complete,
    parse_variants,
    run_ablation,
)
from lab.ablation_report import MB, communication, final_table, total_epochs

CLIENTS = ("a", "b")
# rank-1 of client a per variant; client b gets +10; mAP is rank-1 / 2
RANK1 = {"standalone": 20.0, "baseline": 30.0, "pc": 32.0, "pe": 31.0, "pc_pe": 33.0, "pu": 34.0, "fedureid": 40.0}
MU = {"pu": 0.5, "fedureid": 0.5}


def _history(variant: str, clients, rounds: int = 2) -> list[dict]:
    later_epochs = 1 if variant in ("pe", "pc_pe", "fedureid") else 2  # PE stops after 1 epoch
    out = []
    for rnd in range(1, rounds + 1):
        recs = {}
        for c in clients:
            r1 = RANK1[variant] + (10.0 if c == "b" else 0.0) - (rounds - rnd)  # improves per round
            recs[c] = {"rank1": r1, "rank5": r1, "rank10": r1, "mAP": r1 / 2,
                       "epochs": 3 if rnd == 1 else later_epochs, "time-compute": 1.5}
        out.append({"round": rnd, "clients": recs, "wall_s": 5.0})
    return out


class FakeRunner:
    """Writes a metrics.json like the real commands would; records what it ran."""

    def __init__(self, fail: set[str] = frozenset()):
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, args, log_file: Path) -> int:
        self.calls.append(list(args))
        kv = dict(a.split("=", 1) for a in args[1:])
        run_dir = Path(kv["run_dir"])
        if args[0] == "standalone":
            variant, clients = "standalone", [Path(kv["data"]).name]
        else:
            variant, clients = kv["algorithm"], list(CLIENTS)
        if variant in self.fail:
            return 1
        hist = _history(variant, clients)
        if args[0] == "standalone":
            hist.insert(0, {"round": 0, "clients": {clients[0]: {"rank1": 1.0, "mAP": 1.0}}})
        final = {c: {k: hist[-1]["clients"][c][k] for k in ("rank1", "rank5", "rank10", "mAP")} for c in clients}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps(
            {"rounds": hist, "final": final, "mu": MU.get(variant, 0.0), "pu_where": "cloud",
             "wall_s_simulate": 60.0, "wall_s": 30.0}))
        return 0


def _plan(tmp_path: Path, variants=VARIANTS) -> AblationPlan:
    return AblationPlan(run_dir=tmp_path / "abl", experiment="smoke", overrides=("rounds=2", "train.epochs=2"),
                        clients=CLIENTS, data_root=str(tmp_path / "data"), rounds=2, variants=variants)


def test_tables_have_methods_as_rows_and_clients_plus_mean_as_columns(tmp_path):
    summary = run_ablation(_plan(tmp_path), FakeRunner(), model_bytes=MB)
    assert summary["failed"] == []
    with open(tmp_path / "abl" / "ablation_rank1.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["method", "a", "b", "mean"]
    assert [r[0] for r in rows[1:]] == list(VARIANTS)
    fed = dict((r[0], r[1:]) for r in rows[1:])["fedureid"]
    assert [float(x) for x in fed] == [40.0, 50.0, 45.0]
    with open(tmp_path / "abl" / "ablation_mAP.csv") as f:
        maps = {r[0]: r[1:] for r in csv.reader(f)}
    assert float(maps["baseline"][2]) == pytest.approx(17.5)  # mean of 15 and 20
    md = (tmp_path / "abl" / "ablation_rank1.md").read_text()
    assert "| fedureid | **40.0** | **50.0** | **45.0** |" in md  # best of each column in bold
    for png in ("ablation_curves_rank1.png", "ablation_curves_mAP.png"):
        assert (tmp_path / "abl" / png).stat().st_size > 5000


def test_complete_variants_are_not_rerun_and_incomplete_ones_are(tmp_path):
    plan = _plan(tmp_path)
    first = FakeRunner()
    run_ablation(plan, first)
    assert len(first.calls) == len(FEDERATED) + len(CLIENTS)  # one standalone run per client
    # Drop round 2 of `pe`: only `pe` is run again.
    pe_file = tmp_path / "abl" / "pe" / "metrics.json"
    m = json.loads(pe_file.read_text())
    m["rounds"] = m["rounds"][:1]
    pe_file.write_text(json.dumps(m))
    second = FakeRunner()
    run_ablation(plan, second)
    assert [dict(a.split("=", 1) for a in c[1:])["algorithm"] for c in second.calls] == ["pe"]


def test_federated_variant_gets_shared_overrides_algorithm_and_own_run_dir(tmp_path):
    runner = FakeRunner()
    run_ablation(_plan(tmp_path, variants=("baseline",)), runner)
    (args,) = runner.calls
    assert args[:2] == ["simulate", "experiment=smoke"]
    assert "rounds=2" in args and "train.epochs=2" in args
    assert f"run_dir={tmp_path / 'abl' / 'baseline'}" in args and "algorithm=baseline" in args


def test_failed_variant_is_reported_and_left_out(tmp_path):
    summary = run_ablation(_plan(tmp_path, variants=("baseline", "pu")), FakeRunner(fail={"pu"}))
    assert summary["failed"] == ["pu"]
    text = (tmp_path / "abl" / "ablation.md").read_text()
    assert "Failed or incomplete (left out): pu" in text
    assert "| pu |" not in (tmp_path / "abl" / "ablation_rank1.md").read_text()


def test_total_epochs_and_pe_saving(tmp_path):
    summary = run_ablation(_plan(tmp_path, variants=("baseline", "pe")), FakeRunner())
    res = summary["results"]
    assert total_epochs(res["baseline"]) == 2 * (3 + 2)
    assert total_epochs(res["pe"]) == 2 * (3 + 1)
    assert "pe vs baseline: 8 vs 10 local epochs (20% fewer)" in (tmp_path / "abl" / "ablation.md").read_text()


def test_communication_cloud_pu_sends_one_model_per_edge_edge_pu_one_broadcast():
    cloud = communication(4 * MB, num_clients=3, mu=0.5, pu_where="cloud")
    edge = communication(4 * MB, num_clients=3, mu=0.5, pu_where="edge")
    plain = communication(4 * MB, num_clients=3, mu=0.0, pu_where="cloud")
    assert cloud["up_MB"] == edge["up_MB"] == 12.0
    assert cloud["down_per_edge_MB"] == edge["down_per_edge_MB"] == 4.0
    assert (cloud["distinct_down"], cloud["distinct_down_MB"]) == (3, 12.0)
    assert (edge["distinct_down"], edge["distinct_down_MB"]) == (1, 4.0)
    assert plain["distinct_down"] == 1
    from_global = communication(4 * MB, num_clients=3, mu=0.5, pu_where="cloud", train_from="global")
    assert (from_global["distinct_down"], from_global["distinct_down_MB"]) == (1, 4.0)  # theta_k only to evaluate


def test_is_complete_needs_every_round_and_client():
    hist = {"rounds": _history("baseline", CLIENTS, rounds=3)}
    assert is_complete(hist, 3, CLIENTS)
    assert not is_complete(hist, 4, CLIENTS)
    assert not is_complete(hist, 3, (*CLIENTS, "c"))
    assert not is_complete(None, 1, CLIENTS)


def test_parse_variants_keeps_table_order_and_refuses_unknown():
    assert parse_variants("[fedureid,baseline]") == ("baseline", "fedureid")
    assert parse_variants("all") == VARIANTS
    # FedUReID as published: asked for by name, listed after fedureid, run as algorithm=paper
    assert parse_variants("[paper,baseline,fedureid]") == ("baseline", "fedureid", "paper")
    plan = AblationPlan(run_dir=Path("x"), experiment="demo", overrides=(), clients=CLIENTS,
                        data_root="d", rounds=2, variants=("paper",))
    assert "algorithm=paper" in federated_args(plan, "paper")
    with pytest.raises(ValueError, match="nope"):
        parse_variants("[baseline,nope]")
    with pytest.raises(ValueError, match="unknown variant"):
        AblationPlan(run_dir=Path("x"), experiment="smoke", overrides=(), clients=CLIENTS,
                     data_root="d", rounds=2, variants=("bad",))


def test_final_table_mean_ignores_missing_client():
    rows = final_table({"pu": {"final": {"a": {"rank1": 10.0}}}}, CLIENTS, "rank1")
    assert rows[0][0] == "pu" and rows[0][1] == 10.0 and rows[0][3] == 10.0


def test_measured_traffic_from_the_last_round_that_counted_it():
    from lab.ablation_report import communication_markdown, measured_traffic

    t = {"train_up_bytes": 3 * MB, "train_down_bytes": 3 * MB, "train_down_distinct": 3,
         "train_down_distinct_bytes": 3 * MB, "evaluate_down_bytes": 3 * MB}
    m = {"mu": 0.5, "pu_where": "cloud",
         "rounds": [{"round": 1, "clients": {}, "traffic": {**t, "train_down_distinct_bytes": MB}},
                    {"round": 2, "clients": {}, "traffic": t}, {"round": 3, "clients": {}}]}
    got = measured_traffic(m)
    assert got["round"] == 2 and got["train_down_distinct_bytes"] == 3.0 and got["train_down_distinct"] == 3
    assert measured_traffic({"rounds": [{"round": 1, "clients": {}}]}) is None
    text = communication_markdown({"fedureid": m, "baseline": {"mu": 0.0, "rounds": []}}, MB, 3)
    assert "| fedureid | 0.5 | cloud | 3.00 | 1.00 | 3.00 | 3 (3.00 MB) | 3.00 / 3.00 / 3.00 (round 2) |" in text
    assert "| fedureid | 0.5 | edge (computed) | 3.00 | 1.00 | 3.00 | 1 (1.00 MB) | - |" in text
    assert "| baseline | 0 | cloud | 3.00 | 1.00 | 3.00 | 1 (1.00 MB) | - |" in text


def test_compute_saving_says_more_when_compute_rose():
    from lab.ablation_report import compute_markdown

    def run(epochs: int, seconds: float) -> dict:
        return {"rounds": [{"round": 1, "clients": {"a": {"epochs": epochs, "time-compute": seconds}}}]}
    text = compute_markdown({"baseline": run(10, 100.0), "pe": run(8, 107.0)})
    assert "pe vs baseline: 8 vs 10 local epochs (20% fewer), compute 107 s vs 100 s (7% more)" in text
