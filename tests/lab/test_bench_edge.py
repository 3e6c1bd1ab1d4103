"""`fedureid bench edge`: phase shares of an edge round; the second round reads the cached scan."""

from __future__ import annotations

import pytest

from lab.bench.edge import PHASES, main, shares


def test_shares_hand_worked():
    seconds = {p: 0.0 for p in PHASES}
    seconds.update({"scan": 1.0, "training": 6.0, "merge": 2.0})
    got = shares(seconds, 10.0)
    assert got["scan"] == 0.1 and got["training"] == 0.6 and got["merge"] == 0.2
    assert got["other"] == pytest.approx(0.1)  # the time no phase claimed
    assert sum(got.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_two_small_rounds_print_every_phase(tmp_path, capsys):
    assert main(["--sizes", "60", "--data-dir", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 60 |")]
    assert len(rows) >= 2  # rounds 1 and 2 (each also printed as it finishes)
    assert all(line.count("%") == len(PHASES) + 1 for line in rows)
    assert (tmp_path / "edge_60" / "bounding_box_train").is_dir()
