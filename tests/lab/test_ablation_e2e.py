"""`fedureid ablation` for real on the smoke federation (subset of variants), then `bench round`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fedureid.cli"]


@pytest.mark.slow
def test_ablation_smoke_subset_end_to_end_and_resume(tmp_path):
    run_dir, data = tmp_path / "abl", tmp_path / "data"
    args = [*CLI, "ablation", "experiment=smoke", f"run_dir={run_dir}", f"data.root={data}",
            "variants=[standalone,baseline,fedureid]", "examples=2"]
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with open(run_dir / "ablation_rank1.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["method", "edge_a", "edge_b", "edge_c", "mean"]
    assert [r[0] for r in rows[1:]] == ["standalone", "baseline", "fedureid"]
    assert all(0.0 <= float(x) <= 100.0 for r in rows[1:] for x in r[1:])
    text = (run_dir / "ablation.md").read_text()
    assert "## Communication per round" in text and "retrieval_edge_a.png" in text
    assert (run_dir / "fedureid" / "retrieval_edge_a.png").exists()
    assert "retrieval-examples" in (run_dir / "fedureid" / "report.md").read_text()
    mtime = (run_dir / "baseline" / "metrics.json").stat().st_mtime
    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run_dir / "baseline" / "metrics.json").stat().st_mtime == mtime  # complete: not rerun
    assert "$ fedureid" not in again.stdout
    bench = subprocess.run([*CLI, "bench", "round", "--run-dir", str(run_dir / "fedureid")], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert "| 2 |" in bench.stdout and "overhead" in bench.stdout
    assert json.loads((run_dir / "fedureid" / "metrics.json").read_text())["rounds"][1]["wall_s"] > 0
