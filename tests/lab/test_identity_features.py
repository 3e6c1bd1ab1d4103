"""lab.identity_features.local_model: an edge's own file first, else the run's checkpoint, else a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.identity_features import local_model
from reid_core.federation.state import ServerState


def _checkpoint(run: Path) -> None:
    ServerState(round=2, global_arrays={"w": np.zeros(3, np.float32)},
                client_arrays={"mall": {"w": np.full(3, 2.0, np.float32)}}).save(run / "checkpoint")


def test_the_edges_own_file_wins_over_the_checkpoint(tmp_path: Path):
    _checkpoint(tmp_path)
    (tmp_path / "edge_state" / "mall").mkdir(parents=True)
    np.savez(tmp_path / "edge_state" / "mall" / "local_model.npz", w=np.ones(3, np.float32))
    np.testing.assert_array_equal(local_model(tmp_path, "mall")["w"], np.ones(3))


def test_without_an_edge_file_the_checkpoint_gives_the_edges_last_model(tmp_path: Path):
    _checkpoint(tmp_path)
    np.testing.assert_array_equal(local_model(tmp_path, "mall")["w"], np.full(3, 2.0))


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_an_edge_found_nowhere_is_named(tmp_path: Path, with_checkpoint: bool):
    if with_checkpoint:
        _checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="'campus'"):
        local_model(tmp_path, "campus")
