"""scripts/gpu_check.sh in CPU mode: one table, the CPU stand-ins measured, every GPU row marked skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.bench import gpu_check

REPO = Path(__file__).resolve().parents[2]


def _rows(table: str) -> dict[str, str]:
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    return {title: line for title in gpu_check.TITLES.values() for line in rows if line.startswith(f"| {title} |")}


def test_gpu_rows_are_marked_skipped_without_cuda(tmp_path, capsys):
    out = tmp_path / "check.md"
    assert gpu_check.main(["--cpu", "--out", str(out), "--rows", "trainer_bf16", "merge_100000", "simulation"]) == 0
    table = out.read_text()
    assert table in capsys.readouterr().out  # printed and written: the same one table
    rows = _rows(table)
    assert len(rows) == len(gpu_check.ROWS)
    for row in ("trainer_bf16", "merge_100000", "simulation"):
        assert gpu_check.SKIP_NO_CUDA in rows[gpu_check.TITLES[row]]
    assert "not run" in rows[gpu_check.TITLES["trainer_fp32"]]


def test_a_failing_row_is_reported_in_its_row(monkeypatch, capsys):
    def boom(*_args):
        raise RuntimeError("no | such device")

    monkeypatch.setattr(gpu_check, "run_row", boom)
    assert gpu_check.child("merge_12936", False, 10.0) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(gpu_check.RESULT_TAG) and "error: RuntimeError: no / such device" in line


@pytest.mark.slow
def test_script_in_cpu_mode_measures_the_cpu_parts(tmp_path):
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--out", str(out), "--budget-s", "400"],
                          cwd=REPO, capture_output=True, text=True, timeout=480,
                          env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(out.read_text())
    trainer, merge = rows[gpu_check.TITLES["trainer_fp32"]], rows[gpu_check.TITLES["merge_12936"]]
    assert "img/s" in trainer and "error" not in trainer
    assert "labels identical" in merge and "error" not in merge
    for row in ("trainer_bf16", "merge_100000", "simulation"):
        assert gpu_check.SKIP_NO_CUDA in rows[gpu_check.TITLES[row]]
