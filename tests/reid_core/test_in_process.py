"""The in-process federation (no Flower) drives the same core as the Flower strategy: same figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reid_core.config.settings import ConfigError, load_settings
from reid_core.federation.in_process import run_in_process

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("clusters", "num_examples", "epochs", "train-loss", "precision", "rank1", "rank5", "mAP")


def _settings(run_dir: Path, data: Path, *extra: str):
    return load_settings(["experiment=smoke", f"run_dir={run_dir}", f"data.root={data}", *extra])


def test_deadline_ends_after_whole_rounds(tmp_path):
    # The first round always runs; with the deadline spent, the second does not start.
    metrics = run_in_process(_settings(tmp_path / "run", tmp_path / "data", "rounds=2"), deadline_s=0.001)
    assert [r["round"] for r in metrics["rounds"]] == [1]
    assert metrics["engine"] == "inprocess" and metrics["initial"]
    assert sorted(metrics["final"]) == ["edge_a", "edge_b", "edge_c"]


@pytest.mark.slow
def test_in_process_gives_the_flower_simulations_figures_exactly(tmp_path):
    data = tmp_path / "data"
    extra = ["+learner_for.edge_b=cc"]  # both learners go through the same core
    flower = subprocess.run([sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke",
                             f"run_dir={tmp_path / 'sim'}", f"data.root={data}", *extra],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert flower.returncode == 0, flower.stderr[-3000:]
    ours = run_in_process(_settings(tmp_path / "inproc", data, *extra))
    theirs = json.loads((tmp_path / "sim" / "metrics.json").read_text())
    assert ours["initial"] == theirs["initial"]
    assert [r["round"] for r in ours["rounds"]] == [r["round"] for r in theirs["rounds"]] == [1, 2]
    for mine, ref in zip(ours["rounds"], theirs["rounds"]):
        assert sorted(mine["clients"]) == sorted(ref["clients"])
        for client, m in ref["clients"].items():
            assert {k: mine["clients"][client][k] for k in FIGURES} == {k: m[k] for k in FIGURES}, client


def test_bad_deadline_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="deadline_s"):
        run_in_process(_settings(tmp_path / "run", tmp_path / "data"), deadline_s=-1)
    assert not (tmp_path / "run").exists()


def test_a_rerun_resumes_after_its_last_round(tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    first = run_in_process(_settings(run, data, "rounds=1"))
    both = run_in_process(_settings(run, data, "rounds=2"))
    assert [r["round"] for r in both["rounds"]] == [1, 2]
    assert both["rounds"][0] == first["rounds"][0]  # round 1 kept, not trained again
    with pytest.raises(ConfigError, match="different configuration"):
        run_in_process(_settings(run, data, "rounds=3", "pu.mu=0.3"))


def test_an_edge_that_fails_is_rejected_as_in_flower_and_the_run_goes_on(tmp_path, monkeypatch):
    from reid_core.learners.buc.learner import BUCLearner

    original = BUCLearner.evaluate

    def evaluate(self, arrays, start_from=None):
        if self.name == "edge_b" and self.round >= 1:
            raise ValueError("the model gives no finite feature for any of the 8 query images")
        return original(self, arrays, start_from)

    monkeypatch.setattr(BUCLearner, "evaluate", evaluate)
    metrics = run_in_process(_settings(tmp_path / "run", tmp_path / "data", "rounds=1"))
    rejected = metrics["rounds"][0]["rejected"]
    assert [(r["client"], r["phase"]) for r in rejected] == [("edge_b", "evaluate")]
    assert "error reply: the model gives no finite feature" in rejected[0]["reason"]
    assert sorted(metrics["final"]) == ["edge_a", "edge_c"]


def test_a_fraction_of_the_edges_trains_each_round_and_every_edge_evaluates(tmp_path):
    from reid_core.federation.sampling import train_sample

    settings = _settings(tmp_path / "run", tmp_path / "data", "rounds=2", "federation.fraction_train=0.5",
                         "federation.min_clients=1", "seed=1")
    metrics = run_in_process(settings)
    for record in metrics["rounds"]:
        trained = sorted(n for n, m in record["clients"].items() if "epochs" in m)
        assert trained == train_sample(settings.clients, 0.5, seed=1, rnd=record["round"]) and len(trained) == 2
        assert sorted(n for n, m in record["clients"].items() if "rank1" in m) == ["edge_a", "edge_b", "edge_c"]


def test_train_from_global_trains_as_fedavg_and_evaluates_each_edges_mix(tmp_path):
    data = tmp_path / "data"
    fedavg = run_in_process(_settings(tmp_path / "fedavg", data, "algorithm=baseline"))
    mixed = run_in_process(_settings(tmp_path / "mixed", data, "algorithm=baseline", "pu.mu=0.5", "pu.train_from=global"))
    paper = run_in_process(_settings(tmp_path / "paper", data, "algorithm=baseline", "pu.mu=0.5"))
    trained = ("clusters", "epochs", "train-loss", "precision")
    for mine, ref, pu in zip(mixed["rounds"], fedavg["rounds"], paper["rounds"]):
        for client, m in ref["clients"].items():
            assert {k: mine["clients"][client][k] for k in trained} == {k: m[k] for k in trained}, client
    # evaluated on theta_k, not on the global model FedAvg evaluates
    assert any(mixed["final"][c]["mAP"] != fedavg["final"][c]["mAP"] for c in fedavg["final"])
    # the paper's PU trains round 2 from theta_k: another loss
    assert any(paper["rounds"][1]["clients"][c]["train-loss"] != fedavg["rounds"][1]["clients"][c]["train-loss"]
               for c in fedavg["final"])
