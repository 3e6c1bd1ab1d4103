"""Corrupt data at an edge: damaged files are skipped and counted; an edge with no usable
image fails with a clear error and the federation goes on without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from federations import CLIENTS, DAMAGE, corrupt, images, metrics_of

pytestmark = pytest.mark.faults


def learner(data_dir: Path, state_dir: Path, name: str = "edge_x"):
    from reid_core.config.settings import load_settings
    from reid_core.learners import learner_from_settings

    s = load_settings(["experiment=smoke", "data.synth_preset=null", f"data.root={data_dir.parent}",
                       f"data.clients=[{data_dir.name}]"])
    return learner_from_settings(s, name, str(data_dir), str(state_dir))


def test_each_kind_of_damaged_file_is_skipped_with_its_reason(smoke_root: Path, tmp_path: Path):
    data = tmp_path / "edge_c"
    shutil.copytree(smoke_root / "edge_c", data)
    train = images(data / "bounding_box_train")
    for path, how in zip(train, DAMAGE):
        corrupt(path, how)
    edge = learner(data, tmp_path / "state")
    assert len(edge.paths) == len(train) - 3
    assert sorted(Path(p).name for p in edge.skipped) == sorted(p.name for p in train[:3])
    reasons = " | ".join(edge.skipped.values())
    for word in ("truncated", "zero-byte", "unreadable"):
        assert word in reasons, reasons


def test_edge_without_usable_images_raises_clear_error(smoke_root: Path, tmp_path: Path):
    from reid_core.learners import NoUsableData

    data = tmp_path / "edge_c"
    shutil.copytree(smoke_root / "edge_c", data)
    for i, path in enumerate(images(data / "bounding_box_train")):
        corrupt(path, DAMAGE[i % 3])
    with pytest.raises(NoUsableData, match="edge_x.*no usable training images.*32 unreadable"):
        learner(data, tmp_path / "state")


@pytest.mark.slow
def test_damaged_images_counted_in_every_round(faulty_run):
    """edge_a: 3 of its 72 training images damaged -> 69 used, skipped-images 3, each round."""
    rounds = faulty_run.metrics["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    for rnd in rounds:
        a, b = rnd["clients"]["edge_a"], rnd["clients"]["edge_b"]
        assert (a["skipped-images"], a["num_examples"]) == (3, 69), a
        assert (b["skipped-images"], b["num_examples"]) == (0, 60), b
        # the damaged query image did not stop edge_a's evaluation
        assert 0.0 <= a["rank1"] <= a["rank5"] <= a["rank10"] <= 100.0, a
    for x in faulty_run.exchanges("edge_a", "train"):
        assert metrics_of(x.reply)["skipped-images"] == 3


@pytest.mark.slow
def test_edge_with_no_usable_data_is_reported_and_federation_continues(faulty_run):
    """edge_c's replies are errors naming the problem; rounds complete with edge_a and edge_b."""
    assert faulty_run.error is None
    c_work = [x for x in faulty_run.exchanges("edge_c") if x.message_type in ("train", "evaluate")]
    asked = sorted((x.message_type, x.server_round) for x in c_work)  # round 0: the untrained model
    assert asked == [("evaluate", 0), ("evaluate", 1), ("evaluate", 2), ("train", 1), ("train", 2)]
    for x in c_work:
        assert x.reply.has_error()
        assert "NoUsableData" in x.reply.error.reason
        assert "client 'edge_c': no usable training images" in x.reply.error.reason
    metrics = faulty_run.metrics
    for rnd in metrics["rounds"]:
        assert sorted(rnd["clients"]) == ["edge_a", "edge_b"]
        rejected = {(r["client"], r["phase"]) for r in rnd["rejected"]}
        assert rejected == {("edge_c", "train"), ("edge_c", "evaluate")}, rnd["rejected"]
        assert all("no usable training images" in r["reason"] for r in rnd["rejected"])
    assert sorted(metrics["final"]) == ["edge_a", "edge_b"]
    assert faulty_run.checkpoint_meta()["round"] == 2
    server_log = faulty_run.logs.text(edge_side=False)
    assert "rejected update from 'edge_c'" in server_log
    assert set(CLIENTS) == {x.edge for x in faulty_run.exchanges(message_type="query")}
