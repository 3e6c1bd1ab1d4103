"""`fedureid simulate learner=cc`: the cluster-contrast learner under the real Flower simulation."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_simulate_smoke_with_learner_cc(tmp_path):
    """Two edges run cluster-contrast, one BUC (learner_for): both learners under one federation."""
    run_dir, data = tmp_path / "run", tmp_path / "data"
    res = subprocess.run([sys.executable, "-m", "fedureid.cli", "simulate", "experiment=smoke", "learner=cc",
                          "+learner_for.edge_c=buc",
                          "cc.k1=8", "cc.k2=3", f"run_dir={run_dir}", f"data.root={data}"],
                         cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    for rnd in metrics["rounds"]:
        assert sorted(rnd["clients"]) == ["edge_a", "edge_b", "edge_c"]
        for name, m in rnd["clients"].items():
            if name == "edge_c":  # BUC: no outliers; it merges after each round but the last
                assert m["clusters"] >= 1 and "outliers" not in m and "min-samples" not in m
                assert (m["merged"] > 0) == (rnd["round"] == 1)
            else:
                assert m["clusters"] >= 1 and m["merged"] == 0 and "outliers" in m and "min-samples" in m
            assert 0.0 <= m["rank1"] <= 100.0
    state = sorted(p.name for p in (run_dir / "edge_state" / "edge_a").iterdir())
    assert "learner_state.npz" in state and "local_model.npz" in state
