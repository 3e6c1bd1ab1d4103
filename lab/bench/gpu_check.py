"""One prepared check of the GPU paths: prints ONE Markdown table and writes it to a file.

Run: ``scripts/gpu_check.sh [--out runs/gpu_check.md] [--budget-s 420]`` (or
``python -m lab.bench.gpu_check``). Rows (CUDA):

- trainer vs bare loop, ResNet-50 256x128 batch 64, fp32 and bf16 autocast (640 images, 4 workers);
- BUC merge with faiss on the GPU at N = 12,936 and 100,000 (d = 2048, 5% merges) against
  one GPU k-NN pass (k = 20) of the same features; at 12,936 the labels against the CPU merge;
- a 2-round ``experiment=paper``-shaped simulation, two synthetic Market-sized clients (12,936
  training images each, 1,000 query and gallery; 1 epoch per round to fit the budget)
  sharing the GPU (``federation.client_gpus=0.5``): seconds per round, peak GPU memory.

Without CUDA the CPU parts run small (trainer: tiny model, 64x32, batch 16, 96 images;
merge: faiss-cpu at N = 2,000, d = 256) and every GPU row says "skipped: no CUDA".
Each row runs in its own child process with a time limit taken from one overall
budget: an error or a timeout is written into that row and the check goes on;
the file is rewritten after every row, so a killed run still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

COLUMNS = ("check", "setting", "measured", "reference (same run)", "ratio / verdict")
ROWS = ("trainer_fp32", "trainer_bf16", "merge_12936", "merge_100000", "simulation")
ROW_CAP_S = {"trainer_fp32": 60, "trainer_bf16": 60, "merge_12936": 50, "merge_100000": 80, "simulation": 400}
CPU_ROW_CAP_S = 180  # the CPU stand-ins are small, but a shared 2-core machine may be slow
SKIP_NO_CUDA = "skipped: no CUDA"
RESULT_TAG = "GPU_CHECK_RESULT "


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# ---- rows (each returns the cells after "check") ---------------------------------------------
def row_trainer(amp: str, cuda: bool) -> dict[str, str]:
    import torch

    from reid_core.config.schema import ImageConfig, ModelConfig, TrainConfig
    from lab.bench.synth_images import write_split
    from lab.bench.trainer import time_pair

    if cuda:
        model = ModelConfig(arch="resnet50", embed_dim=2048, weights=None, device="cuda")
        image = ImageConfig(height=256, width=128, batch_size=64, num_workers=4)
        count, repeats, device = 640, 2, torch.device("cuda")
        setting = f"ResNet-50 256x128 batch 64, {count} images, 4 workers, {amp}"
    else:
        model = ModelConfig(arch="tiny", embed_dim=128, weights=None, device="cpu")
        image = ImageConfig(height=64, width=32, batch_size=16, num_workers=0)
        count, repeats, device = 96, 1, torch.device("cpu")
        setting = f"CPU: tiny 64x32 batch 16, {count} images, {amp}"
    with tempfile.TemporaryDirectory(prefix="gpu_check_imgs_") as tmp:
        paths = write_split(tmp, count, 128, 64)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        r = time_pair(model, paths, image, TrainConfig(progress=False, amp=amp), device, repeats)
    peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else ""
    return {"setting": setting, "measured": f"trainer {r['trainer']:.0f} img/s{peak}",
            "reference (same run)": f"bare loop {r['bare']:.0f} img/s", "ratio / verdict": f"{r['ratio']:.2f}"}


def row_merge(num: int, cuda: bool) -> dict[str, str]:
    import numpy as np

    from lab.bench.common import clustered_features
    from reid_core.learners.buc.merge import buc_merge
    from reid_core.runtime.knn import search_base

    dim, backend = (2048, "faiss-gpu") if cuda else (256, "faiss-cpu")
    feats, _ = clustered_features(num, dim, seed=0)
    labels = np.arange(num, dtype=np.int64)
    merges = int(0.05 * num)
    search_base(feats[:256], feats, 21, backend)  # warm-up: GPU resources, faiss threads
    start = time.perf_counter()
    search_base(feats, feats, 21, backend)
    knn_s = time.perf_counter() - start
    start = time.perf_counter()
    merged = buc_merge(feats, labels, merges, 0.003, backend=backend)
    merge_s = time.perf_counter() - start
    verdict = f"{merge_s / knn_s:.1f}x one k-NN pass"
    if num <= 12936:
        cpu = buc_merge(feats, labels, merges, 0.003, backend="faiss-cpu" if cuda else "torch")
        same = bool(np.array_equal(cpu, merged))
        verdict += f"; labels {'identical to' if same else 'DIFFER from'} the {'CPU' if cuda else 'torch'} merge"
    where = "GPU" if cuda else "CPU"
    return {"setting": f"{backend}, N = {num:,}, d = {dim}, {merges:,} merges (5%)",
            "measured": f"merge {merge_s:.2f} s", "reference (same run)": f"one {where} k-NN pass (k=20) {knn_s:.2f} s",
            "ratio / verdict": verdict}


def _gpu_memory_used_mib() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def row_simulation(timeout_s: float) -> dict[str, str]:
    from concurrent.futures import ProcessPoolExecutor

    from reid_core.data.market import SPLIT_FOLDERS
    from lab.bench.synth_images import write_split

    root = Path(tempfile.mkdtemp(prefix="gpu_check_sim_"))
    clients = ("market_a", "market_b")
    counts = {"train": 12936, "query": 1000, "gallery": 1000}
    with ProcessPoolExecutor(6) as pool:  # 2 clients x 3 splits written at once
        jobs = [pool.submit(write_split, root / "data" / c / folder, counts[split], 128, 64, 6,
                            seed + (split != "train"), 1 if split == "train" else 9001, int(split == "gallery"))
                for seed, c in enumerate(clients) for split, folder in SPLIT_FOLDERS.items()]
        for job in jobs:
            job.result()
    run_dir = root / "run"
    cmd = [sys.executable, "-m", "fedureid.cli", "simulate", "experiment=paper", f"data.root={root / 'data'}",
           f"data.clients=[{','.join(clients)}]", "data.synth_preset=null", "rounds=2", "federation.min_clients=2",
           "federation.client_gpus=0.5", "model.weights=null", "train.first_round_epochs=1", "train.epochs=1",
           "train.progress=false", f"run_dir={run_dir}"]
    baseline = _gpu_memory_used_mib()
    peak = [baseline or 0.0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            used = _gpu_memory_used_mib()
            if used is not None:
                peak[0] = max(peak[0], used)

    threading.Thread(target=poll, daemon=True).start()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    finally:
        stop.set()
    wall = time.perf_counter() - start
    metrics_file = run_dir / "metrics.json"
    if proc.returncode != 0 or not metrics_file.exists():
        tail = (proc.stderr or proc.stdout)[-300:].replace("\n", " ").replace("|", "/")
        raise RuntimeError(f"simulate exit {proc.returncode} after {wall:.0f} s: {tail}")
    rounds = sorted(json.loads(metrics_file.read_text())["rounds"], key=lambda r: r["round"])
    per_round = ", ".join(f"r{r['round']} {float(r.get('wall_s', float('nan'))):.1f} s" for r in rounds)
    memory = "n/a (no nvidia-smi)" if baseline is None else f"peak {peak[0] / 1024:.1f} GiB used " \
        f"(before: {baseline / 1024:.1f} GiB)"
    return {"setting": "experiment=paper shape: 2 clients x 12,936 train images, ResNet-50 256x128, "
                       "client_gpus 0.5, 2 rounds of 1 epoch",
            "measured": per_round, "reference (same run)": f"whole simulate {wall:.0f} s",
            "ratio / verdict": memory}


def run_row(row: str, cuda: bool, timeout_s: float) -> dict[str, str]:
    if row == "trainer_fp32":
        return row_trainer("off", cuda)
    if row == "trainer_bf16":
        return row_trainer("bf16", cuda)
    if row.startswith("merge_"):
        num = int(row.split("_")[1])
        return row_merge(num if cuda else 2000, cuda)
    if row == "simulation":
        return row_simulation(timeout_s)
    raise ValueError(f"unknown row {row!r}; choose one of {ROWS}")


# ---- the table ------------------------------------------------------------------------------
TITLES = {"trainer_fp32": "trainer vs bare loop (fp32)", "trainer_bf16": "trainer vs bare loop (bf16 autocast)",
          "merge_12936": "BUC merge, faiss GPU, N = 12,936", "merge_100000": "BUC merge, faiss GPU, N = 100,000",
          "simulation": "paper-shaped simulation, 2 clients on 1 GPU"}
CPU_RUNS = {"trainer_fp32", "merge_12936"}  # rows with a small CPU stand-in


def markdown(cells: dict[str, dict[str, str]], header: str) -> str:
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in ROWS:
        c = cells.get(row, {"setting": "not run", "measured": "", "reference (same run)": "", "ratio / verdict": ""})
        lines.append("| " + " | ".join([TITLES[row], *(c.get(k, "") for k in COLUMNS[1:])]) + " |")
    return "\n".join(lines) + "\n"


def skipped(reason: str) -> dict[str, str]:
    return {"setting": reason, "measured": "", "reference (same run)": "", "ratio / verdict": reason}


def child(row: str, cuda: bool, timeout_s: float) -> int:
    try:
        cells = run_row(row, cuda, timeout_s)
    except Exception as err:  # reported in the table; the other rows still run
        cells = skipped(f"error: {type(err).__name__}: {str(err)[:300]}".replace("|", "/").replace("\n", " "))
    print(RESULT_TAG + json.dumps(cells), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gpu_check.md", help="Markdown file written (default runs/gpu_check.md)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="overall time limit for all rows")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row in this process
    parser.add_argument("--cpu", action="store_true", help="CPU mode even where CUDA is present")
    parser.add_argument("--timeout-s", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cuda = cuda_available() and not args.cpu
    if args.row:
        return child(args.row, cuda, args.timeout_s)

    deadline = time.monotonic() + args.budget_s
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = _header(cuda)
    cells: dict[str, dict[str, str]] = {}
    for row in args.rows:
        if not cuda and row not in CPU_RUNS:
            cells[row] = skipped(SKIP_NO_CUDA)
            continue
        left = deadline - time.monotonic()
        if left < 10:
            cells[row] = skipped("skipped: time budget spent")
            continue
        limit = min(left, ROW_CAP_S[row] if cuda else CPU_ROW_CAP_S)
        cells[row] = _spawn(row, cuda, limit, args.cpu)
        if not cuda:
            cells[row]["setting"] += f" ({SKIP_NO_CUDA} for the GPU setting)"
        out.write_text(markdown(cells, header))
    table = markdown(cells, header)
    out.write_text(table)
    print(table)
    print(f"written: {out}")
    return 0


def _spawn(row: str, cuda: bool, limit: float, force_cpu: bool) -> dict[str, str]:
    cmd = [sys.executable, "-m", "lab.bench.gpu_check", "--row", row, "--timeout-s", str(limit - 5)]
    if force_cpu:
        cmd.append("--cpu")
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return skipped(f"error: timed out after {limit:.0f} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or "")[-300:].replace("\n", " ").replace("|", "/")
    return skipped(f"error: row process exit {proc.returncode} after {time.monotonic() - start:.0f} s: {tail}")


def _header(cuda: bool) -> str:
    import platform

    import torch

    from reid_core.runtime.knn import faiss_info

    info = faiss_info()
    gpu = torch.cuda.get_device_name(0) if cuda else "none (CPU mode: GPU rows skipped)"
    return (f"GPU check {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: GPU {gpu}; torch {torch.__version__}; "
            f"faiss {info['version']} ({', '.join(info['distributions']) or 'not installed'}, "
            f"{info['num_gpus']} GPU(s) seen); {os.cpu_count()} CPU cores; {platform.node()}")


if __name__ == "__main__":
    raise SystemExit(main())
