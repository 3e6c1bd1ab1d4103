"""Edges that misbehave on purpose: what each kind sends, and the screening catching it in a federation."""

import numpy as np
import pytest

from reid_core.config.settings import ConfigError, load_settings
from reid_core.federation.misbehaviour import CLAIMED_COUNT, KINDS, SCALE, misbehave

RECEIVED = {"w": np.ones(4, np.float32), "n": np.array(3, np.int64)}
TRAINED = {"w": np.full(4, 1.5, np.float32), "n": np.array(7, np.int64)}


@pytest.mark.parametrize("kind, expected_w, count", [("scale", 1.0 + SCALE * 0.5, 10), ("flip", 0.5, 10),
                                                     ("stale", 1.0, 10), ("count", 1.5, CLAIMED_COUNT)])
def test_each_kind_worked_by_hand(kind, expected_w, count):
    sent, n = misbehave(kind, TRAINED, RECEIVED, 10)
    np.testing.assert_allclose(sent["w"], expected_w)
    assert sent["w"].dtype == np.float32 and n == count
    assert int(sent["n"]) == 7  # integer buffers stay as trained


def test_noise_replaces_the_weights_and_is_seeded():
    trained = {**TRAINED, "w": np.linspace(0, 3, 400, dtype=np.float32)}
    received = {**RECEIVED, "w": np.zeros(400, np.float32)}
    a, _ = misbehave("noise", trained, received, 10, seed=1)
    b, _ = misbehave("noise", trained, received, 10, seed=1)
    np.testing.assert_array_equal(a["w"], b["w"])
    assert not np.allclose(a["w"], trained["w"], atol=0.1)
    assert abs(float(a["w"].std()) - float(trained["w"].std())) < 0.2  # same spread, other values


def test_unknown_kind_is_refused_by_the_config_naming_the_key(tmp_path):
    assert set(KINDS) == {"scale", "flip", "noise", "stale", "count"}
    with pytest.raises(ConfigError, match=r"misbehave\.edge_b: unknown 'shout'"):
        load_settings(["experiment=smoke", "+misbehave.edge_b=shout", f"data.root={tmp_path / 'd'}"])


def _run(tmp_path, *extra):
    from reid_core.federation.in_process import run_in_process

    s = load_settings(["experiment=smoke", "rounds=2", f"run_dir={tmp_path / 'run'}",
                       f"data.root={tmp_path / 'data'}", "train.first_round_epochs=1", "train.epochs=1", *extra])
    return run_in_process(s)


def test_an_edge_lying_about_its_count_from_the_start_is_held_by_the_share_cap(tmp_path):
    """The growth bound holds a lie that starts later (tests/apps); one told from round 1 needs the cap."""
    metrics = _run(tmp_path, "+misbehave.edge_b=count", "federation.max_share=0.5")
    for rnd in metrics["rounds"]:
        clients = rnd["clients"]
        assert clients["edge_b"]["num_examples"] == CLAIMED_COUNT
        total = sum(m["weight"] for m in clients.values())
        assert clients["edge_b"]["weight"] / total == pytest.approx(0.5)


def test_a_scaled_update_is_screened_out(tmp_path):
    metrics = _run(tmp_path, "+misbehave.edge_b=scale", "federation.outlier_k=5")
    for rnd in metrics["rounds"]:
        assert [r["client"] for r in rnd["rejected"] if r["phase"] == "screening"] == ["edge_b"]
        assert "num_examples" not in rnd["clients"]["edge_b"]  # not aggregated, still evaluated
        assert "rank1" in rnd["clients"]["edge_b"]


def test_evaluate_every_skips_the_edges_evaluation_but_never_round_0_or_the_last(tmp_path):
    from reid_core.federation.core import FederationCore
    from reid_core.federation.state import ServerState

    core = FederationCore(ServerState(), evaluate_every=2)
    assert [r for r in range(6) if core.evaluates(r, total_rounds=5)] == [0, 2, 4, 5]
    metrics = _run(tmp_path, "rounds=3", "federation.evaluate_every=2")
    evaluated = [r["round"] for r in metrics["rounds"] if any("rank1" in m for m in r["clients"].values())]
    assert evaluated == [2, 3] and metrics["initial"] and sorted(metrics["final"]) == ["edge_a", "edge_b", "edge_c"]
    assert all("num_examples" in m for r in metrics["rounds"] for m in r["clients"].values())  # every round trained
