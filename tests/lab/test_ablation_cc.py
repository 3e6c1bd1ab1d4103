"""The cc rows of the ablation: learner=cc per variant, in the same tables as the BUC rows (fake runner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lab.ablation import (
    CC_VARIANTS,
    VARIANTS,
    AblationPlan,
    federated_args,
    parse_variants,
    run_ablation,
    standalone_args,
)

CLIENTS = ("a", "b")


class CCFakeRunner:
    """metrics.json whose rank-1 tells which learner and algorithm ran: 10 x (algorithm index) (+50 for cc)."""

    ALGORITHMS = ("baseline", "fedureid")

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args, log_file: Path) -> int:
        self.calls.append(list(args))
        kv = dict(a.split("=", 1) for a in args[1:])
        clients = [Path(kv["data"]).name] if args[0] == "standalone" else list(CLIENTS)
        r1 = 10.0 * (self.ALGORITHMS.index(kv["algorithm"]) + 1) + (50.0 if kv.get("learner") == "cc" else 0.0)
        recs = {c: {"rank1": r1, "rank5": r1, "rank10": r1, "mAP": r1 / 2, "epochs": 2, "time-compute": 1.0}
                for c in clients}
        run_dir = Path(kv["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps({
            "rounds": [{"round": 1, "clients": recs}], "final": recs, "mu": 0.5 if "fedureid" in args[-2] else 0.0,
            "pu_where": "cloud"}))
        return 0


def _plan(tmp_path: Path, variants) -> AblationPlan:
    return AblationPlan(run_dir=tmp_path / "abl", experiment="smoke", overrides=("rounds=1",), clients=CLIENTS,
                        data_root=str(tmp_path / "data"), rounds=1, variants=variants)


def test_cc_variants_run_learner_cc_with_their_algorithm(tmp_path):
    plan = _plan(tmp_path, ("baseline", *CC_VARIANTS))
    assert "learner=cc" in federated_args(plan, "cc_baseline") and "algorithm=baseline" in federated_args(plan, "cc_baseline")
    assert "algorithm=fedureid" in federated_args(plan, "cc_fedureid")
    assert "learner=cc" not in federated_args(plan, "baseline")
    alone = standalone_args(plan, "a", "cc_standalone")
    assert alone[0] == "standalone" and "learner=cc" in alone and "algorithm=baseline" in alone
    assert alone[-1] == f"run_dir={tmp_path / 'abl' / 'cc_standalone' / 'a'}"


def test_cc_rows_sit_in_the_same_tables_as_the_buc_rows(tmp_path):
    runner = CCFakeRunner()
    summary = run_ablation(_plan(tmp_path, ("standalone", "baseline", "fedureid", *CC_VARIANTS)), runner)
    assert summary["failed"] == []
    with open(tmp_path / "abl" / "ablation_rank1.csv") as f:
        rows = {r[0]: [float(x) for x in r[1:]] for r in list(csv.reader(f))[1:]}
    assert list(rows) == ["standalone", "baseline", "fedureid", *CC_VARIANTS]
    assert rows["baseline"][0] == 10.0 and rows["cc_baseline"][0] == 60.0 and rows["cc_fedureid"][0] == 70.0
    assert rows["cc_standalone"] == [60.0, 60.0, 60.0]  # one standalone cc run per client
    assert sum(c[0] == "standalone" for c in runner.calls) == 2 * len(CLIENTS)
    text = (tmp_path / "abl" / "ablation.md").read_text()
    assert "cc_fedureid vs cc_baseline" in text and "learner=cc" in text


def test_parse_variants_all_stays_buc_and_cc_names_the_cc_rows():
    assert parse_variants("all") == VARIANTS
    assert parse_variants("cc") == CC_VARIANTS
    assert parse_variants("[all,cc]") == VARIANTS + CC_VARIANTS
    assert parse_variants("[cc_fedureid,baseline]") == ("baseline", "cc_fedureid")


def test_cc_fedureid_runs_pu_mu_half_unless_the_shared_overrides_set_it(tmp_path):
    plan = _plan(tmp_path, CC_VARIANTS)
    assert {"pu.mu=0.5", "pu.train_from=personalized"} <= set(federated_args(plan, "cc_fedureid"))  # as measured
    assert not any(a.startswith("pu.mu") for a in federated_args(plan, "fedureid"))  # BUC keeps its 0.8
    shared = AblationPlan(run_dir=tmp_path, experiment="smoke", overrides=("pu.mu=0.8",), clients=CLIENTS,
                          data_root=str(tmp_path), rounds=1, variants=CC_VARIANTS)
    args = federated_args(shared, "cc_fedureid")
    assert [a for a in args if a.startswith("pu.mu")] == ["pu.mu=0.8"] and "learner=cc" in args
