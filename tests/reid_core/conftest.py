"""Shared fixtures for the core tests."""

import pytest
import torch

from reid_core.runtime import knn


@pytest.fixture
def single_thread():
    """Small searches run faster on one thread, and do not stall when other jobs share the CPU."""
    faiss = knn._import_faiss()
    faiss_threads = faiss.omp_get_max_threads() if faiss is not None else None
    torch_threads = torch.get_num_threads()
    if faiss is not None:
        faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    if faiss is not None:
        faiss.omp_set_num_threads(faiss_threads)
    torch.set_num_threads(torch_threads)
