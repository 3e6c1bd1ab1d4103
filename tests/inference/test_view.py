"""Retrieval view on the small synthetic federation with a tiny random checkpoint."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from reid_core.data.market import parse_market_name, read_market_layout
from reid_core.inference.view import (
    BLUE,
    GREEN,
    GREY,
    RED,
    REPORT_MARKER,
    TILE_H,
    ClientRetrieval,
    RetrievalRow,
    frame_colour,
    render_retrieval,
    render_retrieval_examples,
    show_retrieval,
    tile_box,
)
from reid_core.federation.state import ServerState
from reid_core.inference.retrieval import load_model

MU = 0.5  # the fake run's mu (conftest.py)


def _frame_pixel(img: Image.Image, row: int, col: int) -> tuple[int, int, int]:
    x0, y0, _, _ = tile_box(row, col)
    return img.getpixel((x0 + 1, y0 + 1))


def test_render_frames_true_green_false_red_unknown_grey(tmp_path, smoke_data):
    paths = sorted(str(p) for p in (smoke_data / "edge_a" / "query").iterdir())
    rows = [RetrievalRow(paths[0], paths[1:4], [True, False, None]),
            RetrievalRow(paths[4], paths[5:7], [False, True])]
    img = render_retrieval(rows, "title\nline 2", tmp_path / "v.png")
    saved = Image.open(tmp_path / "v.png").convert("RGB")
    assert saved.size == img.size
    assert saved.size[0] >= tile_box(0, 3)[2] and saved.size[1] >= tile_box(1, 0)[3] + 10
    assert _frame_pixel(saved, 0, 0) == BLUE
    assert [_frame_pixel(saved, 0, c) for c in (1, 2, 3)] == [GREEN, RED, GREY]
    assert [_frame_pixel(saved, 1, c) for c in (1, 2)] == [RED, GREEN]
    # inside a frame is the image, not frame colour
    x0, y0, x1, y1 = tile_box(0, 1)
    inside = np.asarray(saved.crop((x0 + 8, y0 + 8, x1 - 8, y1 - 8)))
    assert not np.all(inside == np.array(GREEN, dtype=np.uint8))


def test_render_needs_rows(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        render_retrieval([], "t", tmp_path / "x.png")


def test_show_marks_true_matches_by_identity_and_skips_same_camera(tmp_path, fake_run, smoke_data):
    out = tmp_path / "show.png"
    scores = show_retrieval(fake_run / "checkpoint", smoke_data, out, client="edge_a", query=2, k=6)
    assert 0.0 <= scores["rank1"] <= 100.0 and 0.0 < scores["mAP"] <= 100.0
    view = ClientRetrieval(load_model(fake_run, "edge_a"), read_market_layout(smoke_data / "edge_a"))
    row = view.row(2, 6)
    q_pid, q_cam = parse_market_name(os.path.basename(row.query))
    img = Image.open(out).convert("RGB")
    assert img.size[1] >= TILE_H
    assert len(row.gallery) == 6
    for col, path in enumerate(row.gallery, start=1):
        pid, cam = parse_market_name(os.path.basename(path))
        assert not (pid == q_pid and cam == q_cam)  # evaluation ignores these
        assert _frame_pixel(img, 0, col) == frame_colour(pid == q_pid)
    assert scores == pytest.approx(view.scores)


def test_show_accepts_a_query_file_outside_the_split(tmp_path, fake_run, smoke_data):
    src = sorted((smoke_data / "edge_b" / "query").iterdir())[0]
    query = tmp_path / "someone.png"  # name does not parse: identity unknown -> grey frames
    query.write_bytes(src.read_bytes())
    out = tmp_path / "show.png"
    show_retrieval(fake_run, smoke_data / "edge_b", out, query=str(query), k=3)
    img = Image.open(out).convert("RGB")
    assert [_frame_pixel(img, 0, c) for c in (1, 2, 3)] == [GREY] * 3


def test_personalised_model_mixes_client_and_global_by_mu(fake_run):
    key = "trunk.0.weight"
    glob = load_model(fake_run, kind="global").net.state_dict()[key].numpy()
    local = load_model(fake_run, "edge_b", kind="client").net.state_dict()[key].numpy()
    mixed = load_model(fake_run, "edge_b").net.state_dict()[key].numpy()
    assert not np.allclose(glob, local)
    np.testing.assert_allclose(mixed, MU * local + (1 - MU) * glob, rtol=1e-5, atol=1e-6)


def test_unknown_client_and_missing_checkpoint_are_clear_errors(tmp_path, fake_run):
    with pytest.raises(ValueError, match="edge_a"):
        load_model(fake_run, "nobody")
    with pytest.raises(ValueError, match="choose client"):
        load_model(fake_run, None, kind="client")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path)


def test_examples_written_next_to_report_and_section_replaced(fake_run):
    pngs = render_retrieval_examples(fake_run, clients=["edge_c"], num_queries=2, k=4)
    assert pngs == [fake_run / "retrieval_edge_c.png"]
    two_rows = Image.open(pngs[0]).size[1]
    assert two_rows >= tile_box(1, 0)[3]
    render_retrieval_examples(fake_run, clients=["edge_c"], num_queries=2, k=4)
    report = (fake_run / "report.md").read_text()
    assert report.startswith("# Run report: smoke")
    assert report.count(REPORT_MARKER) == 1 and "![retrieval_edge_c](retrieval_edge_c.png)" in report


@pytest.mark.parametrize("mu, expected", [(0.5, "personalised (mu=0.5) model"),
                                          (0.0, "personalised = global (mu=0) model")])
def test_title_says_when_the_personalised_model_is_the_global_one(fake_run, smoke_data, mu, expected):
    from dataclasses import replace

    model = replace(load_model(fake_run, "edge_a"), mu=mu)
    view = ClientRetrieval(model, read_market_layout(smoke_data / "edge_a"))
    first, second = view.title().split("\n")
    assert first == f"edge_a: {expected}, round 2"
    assert second.startswith(f"rank-1 {view.scores['rank1']:.1f}%  mAP {view.scores['mAP']:.1f}%")


def test_personalised_model_keeps_the_clients_batchnorm_when_the_run_did(tmp_path, fake_run):
    run = tmp_path / "run"
    shutil.copytree(fake_run, run)
    meta = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**meta, "local_bn": True}))
    bn, conv = "trunk.1.running_mean", "trunk.0.weight"
    state = ServerState.load(run / "checkpoint")  # fresh models' statistics are all 0: give edge_b its own
    state.client_arrays["edge_b"][bn] = np.full_like(state.client_arrays["edge_b"][bn], 0.25)
    state.save(run / "checkpoint")
    local = load_model(run, "edge_b", kind="client").net.state_dict()
    glob = load_model(run, kind="global").net.state_dict()
    mixed = load_model(run, "edge_b").net.state_dict()
    assert not np.allclose(glob[bn].numpy(), local[bn].numpy())
    np.testing.assert_array_equal(mixed[bn].numpy(), local[bn].numpy())
    np.testing.assert_allclose(mixed[conv].numpy(), MU * local[conv].numpy() + (1 - MU) * glob[conv].numpy(),
                               rtol=1e-5, atol=1e-6)
