"""Tests for reid_core.runtime.knn: exact k-NN against numpy brute force, backend info."""

from __future__ import annotations

import importlib.metadata
import logging

import numpy as np
import pytest
import torch

from reid_core.runtime import knn
from reid_core.runtime.knn import faiss_info, faiss_worker_init, knn_search, resolve_backend, search_base

BACKENDS = ["torch"] + (["faiss-cpu"] if knn._import_faiss() is not None else [])


pytestmark = pytest.mark.usefixtures("single_thread")  # fixture in conftest.py


def brute_force(feats: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest other rows by float64 squared L2."""
    f64 = feats.astype(np.float64)
    dist = ((f64[queries, None, :] - f64[None, :, :]) ** 2).sum(axis=2)
    dist[np.arange(len(queries)), queries] = np.inf
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, axis=1), idx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("subset", [False, True])
def test_matches_brute_force(backend, subset):
    # Prepare
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.choice(300, 40, replace=False) if subset else np.arange(300)
    # Execute
    dist, idx = knn_search(feats, 7, queries_idx=queries if subset else None, backend=backend)
    # Assert
    want_dist, want_idx = brute_force(feats, queries, 7)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-4, atol=1e-4)
    assert dist.dtype == np.float32 and idx.dtype == np.int64


def test_query_subsets_are_searched_in_chunks(monkeypatch):
    """A scattered subset is copied out a few rows at a time; results are unchanged."""
    monkeypatch.setattr(knn, "_QUERY_CHUNK_BYTES", 4 * 16 * 7)  # 7 queries per chunk
    feats = np.random.default_rng(2).standard_normal((200, 16)).astype(np.float32)
    queries = np.array([5, 3, 190, 77, 78, 79, 0, 150, 151, 12, 13, 199, 40, 41, 42, 43])
    dist, idx = knn_search(feats, 5, queries_idx=queries)
    want_dist, want_idx = brute_force(feats, queries, 5)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_keep_one_zero_and_never_the_query(backend):
    """Rows 0-3 are identical: each finds the 3 others at distance 0, not itself."""
    feats = np.random.default_rng(1).standard_normal((20, 8)).astype(np.float32)
    feats[1:4] = feats[0]
    dist, idx = knn_search(feats, 4, queries_idx=np.arange(4), backend=backend)
    for row in range(4):
        assert row not in idx[row]
        assert set(idx[row, :3]) == set(range(4)) - {row}
        np.testing.assert_allclose(dist[row, :3], 0.0, atol=1e-5)
        assert dist[row, 3] > 0.1


@pytest.mark.parametrize(
    ("k", "queries", "backend", "message"),
    [(0, None, "auto", "k must"), (20, None, "auto", "k must"), (2, np.array([25]), "auto", "queries_idx"),
     (2, None, "annoy", "unknown")],
)
def test_bad_arguments(k, queries, backend, message):
    feats = np.zeros((20, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        knn_search(feats, k, queries_idx=queries, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_base_finds_the_query_itself(backend):
    base = np.arange(12, dtype=np.float64).reshape(6, 2)  # float64 input is converted
    dist, idx = search_base(base[[0, 5]], base, 2, backend=backend)
    np.testing.assert_array_equal(idx, [[0, 1], [5, 4]])
    np.testing.assert_allclose(dist, [[0, 8], [0, 8]], atol=1e-5)
    with pytest.raises(ValueError, match="k must"):
        search_base(base, base, 7, backend=backend)


def test_faiss_gpu_without_gpu_is_a_clear_error():
    if knn._import_faiss() is not None and knn._num_faiss_gpus(knn._import_faiss()) > 0:
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="faiss"):
        resolve_backend("faiss-gpu")


def test_faiss_info_reports_install():
    info = faiss_info()
    assert set(info) >= {"distributions", "importable", "version", "num_gpus", "backend", "problems"}
    assert info["backend"] == resolve_backend("auto")
    if info["importable"]:
        assert info["backend"].startswith("faiss")


def test_faiss_info_warns_about_two_faiss_wheels(monkeypatch, caplog):
    versions = {"faiss-cpu": "1.9.0", "faiss-gpu-cu12": "1.9.0"}

    def fake_version(name: str) -> str:
        if name in versions:
            return versions[name]
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(knn.importlib.metadata, "version", fake_version)
    with caplog.at_level(logging.WARNING, logger="reid_core.runtime.knn"):
        info = faiss_info()
    assert set(info["distributions"]) == set(versions)
    assert any("more than one faiss" in p for p in info["problems"])
    assert "more than one faiss" in caplog.text


def test_worker_init_makes_faiss_single_threaded(monkeypatch):
    faiss = knn._import_faiss()
    if faiss is None:
        pytest.skip("faiss not installed")
    calls = []
    monkeypatch.setattr(faiss, "omp_set_num_threads", calls.append)
    faiss_worker_init(3)
    assert calls == [1]
