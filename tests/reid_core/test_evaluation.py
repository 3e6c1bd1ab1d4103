"""Tests for reid_core.eval.ranking: Market-1501 CMC/mAP, distances, feature extraction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lab.bench.evaluation import market_like_problem, naive_evaluate_rank
from reid_core.config.schema import ImageConfig, ModelConfig
from reid_core.data.market import read_market_layout
from reid_core.features import extract_features
from reid_core.eval.ranking import (
    evaluate_features,
    evaluate_model,
    evaluate_rank,
    pairwise_sqdist,
)
from reid_core.models import build_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def two_query_problem() -> tuple[np.ndarray, ...]:
    """2 queries x 4 gallery, worked by hand below."""
    distmat = np.array([[0.1, 0.4, 0.2, 0.3],
                        [0.5, 0.6, 0.1, 0.7]])
    q_pids, q_camids = np.array([1, 2]), np.array([0, 0])
    g_pids, g_camids = np.array([1, 1, 2, 3]), np.array([0, 1, 1, 1])
    return distmat, q_pids, g_pids, q_camids, g_camids


def test_hand_worked_same_camera_removal() -> None:
    """q0: g0 (same pid+cam) is dropped -> order g2, g3, g1 -> match at rank 3; q1: rank 1."""
    # Execute
    cmc, mean_ap = evaluate_rank(*two_query_problem(), max_rank=4)
    # Assert
    np.testing.assert_allclose(cmc, [0.5, 0.5, 1.0, 1.0])
    assert mean_ap == pytest.approx((1 / 3 + 1.0) / 2)


def test_ap_averages_precision_at_each_match() -> None:
    """Matches at ranks 1 and 4 -> AP = (1/1 + 2/4) / 2 = 0.75."""
    distmat = np.array([[0.1, 0.5, 0.3, 0.2]])
    cmc, mean_ap = evaluate_rank(distmat, np.array([1]), np.array([1, 1, 2, 3]),
                                 np.array([2]), np.array([0, 1, 1, 1]), max_rank=4)
    np.testing.assert_allclose(cmc, [1, 1, 1, 1])
    assert mean_ap == pytest.approx(0.75)


def test_query_without_valid_match_is_skipped() -> None:
    """A query whose only same-pid image shares its camera, and one with an unseen pid."""
    distmat, q_pids, g_pids, q_camids, g_camids = two_query_problem()
    distmat = np.vstack([distmat, [0.9, 0.9, 0.9, 0.0], [0.0, 0.1, 0.2, 0.3]])
    q_pids, q_camids = np.array([1, 2, 3, 9]), np.array([0, 0, 1, 0])
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=4)
    np.testing.assert_allclose(cmc, [0.5, 0.5, 1.0, 1.0])
    assert mean_ap == pytest.approx(2 / 3)


def test_no_valid_query_raises() -> None:
    distmat = np.array([[0.1, 0.2]])
    with pytest.raises(ValueError, match="no query"):
        evaluate_rank(distmat, np.array([1]), np.array([1, 2]), np.array([0]), np.array([0, 1]))


def test_ties_rank_non_matches_first() -> None:
    """All distances equal (a collapsed model) -> the match is ranked last."""
    distmat = np.full((1, 3), 0.5)
    cmc, mean_ap = evaluate_rank(distmat, np.array([1]), np.array([2, 1, 3]),
                                 np.array([0]), np.array([1, 1, 1]))
    np.testing.assert_allclose(cmc, [0, 0, 1])
    assert mean_ap == pytest.approx(1 / 3)


def test_max_rank_cut_to_gallery_size(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cmc, _ = evaluate_rank(*two_query_problem(), max_rank=50)
    assert len(cmc) == 4
    assert "max_rank" in caplog.text


@pytest.mark.parametrize("bad, message", [
    ({"distmat": np.array([[np.nan, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]])}, "NaN"),
    ({"q_pids": np.array([1, 2, 3])}, "q_pids"),
    ({"g_camids": np.array([0.0, 1.0, 1.0, 1.0])}, "integers"),
    ({"distmat": np.zeros(4)}, "2-D"),
])
def test_bad_input_raises(bad: dict, message: str) -> None:
    args = dict(zip(["distmat", "q_pids", "g_pids", "q_camids", "g_camids"], two_query_problem()))
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        evaluate_rank(**args)


@pytest.mark.parametrize("seed, dtype", [(0, np.float32), (1, np.float64), (2, np.float32)])
def test_matches_naive_loop_on_random_data(seed: int, dtype: type) -> None:
    """Few ids and cameras: many matches, many same-camera removals, some skipped queries."""
    distmat, q_pids, g_pids, q_camids, g_camids = market_like_problem(300, 700, 40, 3, seed)
    distmat = distmat.astype(dtype)
    q_pids[:5] = 999  # pid absent from the gallery
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    ref_cmc, ref_ap = naive_evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, 50)
    np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
    assert mean_ap == pytest.approx(ref_ap, abs=1e-6)
    assert np.all(np.diff(cmc) >= 0) and 0 <= cmc[0] and cmc[-1] <= 1


def test_chunking_matches_naive_loop_beyond_one_block() -> None:
    """More queries than one 256-row block, non-contiguous input."""
    distmat, q_pids, g_pids, q_camids, g_camids = market_like_problem(700, 300, 30, 2, 5)
    distmat_f = np.asfortranarray(distmat)
    cmc, mean_ap = evaluate_rank(distmat_f, q_pids, g_pids, q_camids, g_camids, max_rank=20)
    ref_cmc, ref_ap = naive_evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, 20)
    np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
    assert mean_ap == pytest.approx(ref_ap, abs=1e-6)


def test_pairwise_sqdist_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)
    expected = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    dist = pairwise_sqdist(qf, gf)
    assert dist.dtype == np.float32 and dist.shape == (5, 7)
    np.testing.assert_allclose(dist, expected, rtol=1e-5, atol=1e-5)


def test_evaluate_features_reports_percent() -> None:
    """Query 0 sees its match first, query 1 second (after a distractor)."""
    qf = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gf = np.array([[1.0, 0.0], [0.1, 1.0], [0.0, 0.9]], dtype=np.float32)
    scores = evaluate_features(qf, gf, np.array([1, 2]), np.array([1, 0, 2]),
                               np.array([0, 0]), np.array([1, 1, 1]))
    assert set(scores) == {"rank1", "rank5", "rank10", "mAP"}
    assert scores["rank1"] == pytest.approx(50.0)
    assert scores["rank5"] == scores["rank10"] == pytest.approx(100.0)
    assert scores["mAP"] == pytest.approx(75.0)


@dataclass(frozen=True)
class FakeSample:
    path: str
    pid: int
    camid: int


def _write_images(root: Path, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = root / f"{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_extract_features_order_norm_and_mode(tmp_path: Path) -> None:
    # Prepare
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny", embed_dim=16, dropout=0.5))
    paths = _write_images(tmp_path, 5)
    # Execute
    pool = extract_features(model, paths, 32, 16, batch_size=2, device=torch.device("cpu"))
    embed = extract_features(model, paths, 32, 16, 3, torch.device("cpu"), which="embed")
    # Assert
    assert model.training  # mode restored
    assert pool.shape == (5, model.feature_dim) and embed.shape == (5, 16)
    assert pool.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pool, axis=1), 1.0, rtol=1e-5)
    single = extract_features(model, paths[3:4], 32, 16, 1, torch.device("cpu"))
    np.testing.assert_allclose(single[0], pool[3], rtol=1e-4, atol=1e-5)


def test_extract_features_missing_image(tmp_path: Path) -> None:
    model = build_model(ModelConfig(arch="tiny", embed_dim=0))
    paths = _write_images(tmp_path, 3)
    Path(paths[1]).write_bytes(b"")
    with pytest.raises(ValueError, match="failed to decode"):
        extract_features(model, paths, 32, 16, 2, torch.device("cpu"))
    feats = extract_features(model, paths, 32, 16, 2, torch.device("cpu"), allow_missing=True)
    assert np.isnan(feats[1]).all() and not np.isnan(feats[[0, 2]]).any()


def test_evaluate_model_on_tiny_images(tmp_path: Path) -> None:
    model = build_model(ModelConfig(arch="tiny", embed_dim=0))
    paths = _write_images(tmp_path, 6)
    query = [FakeSample(paths[0], 1, 0), FakeSample(paths[1], 2, 0)]
    gallery = [FakeSample(p, pid, 1) for p, pid in zip(paths[2:], [1, 2, 3, 4])]
    scores = evaluate_model(model, query, gallery, ImageConfig(height=32, width=16),
                            torch.device("cpu"))
    assert set(scores) == {"rank1", "rank5", "rank10", "mAP"}
    assert 0.0 <= scores["rank1"] <= scores["rank5"] <= 100.0
    assert scores["rank5"] == pytest.approx(100.0)  # 4 gallery images: every match in top 4


def _diverged_model():
    """A tiny network whose weights are all NaN, as after a diverged round."""
    model = build_model(ModelConfig(arch="tiny", embed_dim=0))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return model


def test_a_diverged_model_is_a_clear_error_not_an_empty_ranking(tmp_path: Path) -> None:
    model = _diverged_model()
    paths = _write_images(tmp_path, 4)
    query, gallery = [FakeSample(paths[0], 1, 0)], [FakeSample(p, 1, 1) for p in paths[1:]]
    with pytest.raises(ValueError, match="no finite feature for any of the 1 query images"):
        evaluate_model(model, query, gallery, ImageConfig(height=32, width=16), torch.device("cpu"))


def test_features_of_a_diverged_model_name_the_weights_not_the_images(tmp_path: Path) -> None:
    model = _diverged_model()
    paths = _write_images(tmp_path, 3)
    with pytest.raises(ValueError, match=r"non-finite features for 3 of 3 image\(s\) \(its weights have diverged\)"):
        extract_features(model, paths, 32, 16, 2, torch.device("cpu"))
    feats = extract_features(model, paths, 32, 16, 2, torch.device("cpu"), allow_missing=True)
    assert np.isnan(feats).all()  # evaluation reads them and says so itself (below)


@pytest.mark.shared
@pytest.mark.slow
def test_imagenet_mobilenet_on_viper_matches_weights_readme() -> None:
    """The weights README reports VIPeR rank-1 6.3 / mAP 11.8 at 256x128 (pool5)."""
    weights = SHARED / "weights" / "mobilenet_v2_imagenet_features.pt"
    root = SHARED / "data" / "viper"
    if not weights.is_file() or not root.is_dir():
        pytest.skip(f"needs {weights} and {root}")
    dataset = read_market_layout(root, "viper")
    model = build_model(ModelConfig(arch="mobilenet_v2", embed_dim=0, weights=str(weights)))
    scores = evaluate_model(model, dataset.query, dataset.gallery,
                            ImageConfig(height=256, width=128), torch.device("cpu"))
    assert scores["rank1"] == pytest.approx(6.33, abs=0.05)  # 20 of 316 queries
    assert scores["mAP"] == pytest.approx(11.84, abs=0.05)
