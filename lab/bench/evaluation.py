"""Time ``evaluate_rank`` on a Market-1501-sized random problem against a naive loop.

Run: ``python -m lab.bench.evaluation [--num-query 3368 --num-gallery 15913]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import torch

from reid_core.eval.ranking import evaluate_rank


def naive_evaluate_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                        q_camids: np.ndarray, g_camids: np.ndarray,
                        max_rank: int = 50) -> tuple[np.ndarray, float]:
    """Reference: torchreid's ``eval_market1501`` loop (one argsort per query).

    Same semantics as torchreid's Python version, with its list comprehension
    replaced by numpy; the sort is stable, so ties keep gallery order.
    """
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    all_cmc, all_ap = [], []
    for q in range(num_q):
        order = np.argsort(distmat[q], kind="stable")
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw_cmc = (g_pids[order][keep] == q_pids[q]).astype(np.int64)
        if not raw_cmc.any():
            continue
        cmc = np.minimum(raw_cmc.cumsum(), 1)
        # Pad with the last value when same-camera removal left < max_rank entries.
        cmc = np.pad(cmc[:max_rank], (0, max(0, max_rank - len(cmc))), mode="edge")
        all_cmc.append(cmc)
        precision_at = raw_cmc.cumsum() / np.arange(1, len(raw_cmc) + 1)
        all_ap.append((precision_at * raw_cmc).sum() / raw_cmc.sum())
    if not all_cmc:
        raise ValueError("no query has a true match in the gallery")
    return np.mean(np.asarray(all_cmc, dtype=np.float64), axis=0), float(np.mean(all_ap))


def market_like_problem(num_query: int, num_gallery: int, num_ids: int, num_cams: int,
                        seed: int) -> tuple[np.ndarray, ...]:
    """Random distmat (float32) and Market-like ids: queries from ``num_ids`` ids,
    gallery ~ 1/5 distractors (pid 0) and the rest from the same ids."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, num_ids + 1, num_query)
    g_pids = rng.integers(1, num_ids + 1, num_gallery)
    g_pids[rng.random(num_gallery) < 0.2] = 0
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    distmat = rng.random((num_query, num_gallery), dtype=np.float32)
    return distmat, q_pids, g_pids, q_camids, g_camids


def _best_time(fn, repeats: int) -> tuple[float, tuple[np.ndarray, float]]:
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def main(argv: Sequence[str] | None = None) -> int:
    """Print timings of the vectorised and naive evaluation, and their max difference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-query", type=int, default=3368)
    parser.add_argument("--num-gallery", type=int, default=15913)
    parser.add_argument("--num-ids", type=int, default=750)
    parser.add_argument("--num-cams", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for evaluate_rank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)

    problem = market_like_problem(args.num_query, args.num_gallery, args.num_ids,
                                  args.num_cams, args.seed)
    print(f"problem: {args.num_query} x {args.num_gallery} float32, {args.num_ids} ids, "
          f"{args.num_cams} cams; torch threads {torch.get_num_threads()}")
    fast_s, (cmc, mean_ap) = _best_time(lambda: evaluate_rank(*problem), args.repeats)
    print(f"evaluate_rank        {fast_s:7.3f} s  rank1 {cmc[0]:.5f} mAP {mean_ap:.5f}")
    if args.skip_naive:
        return 0
    naive_s, (ref_cmc, ref_ap) = _best_time(lambda: naive_evaluate_rank(*problem), 1)
    print(f"naive per-query loop {naive_s:7.3f} s  rank1 {ref_cmc[0]:.5f} mAP {ref_ap:.5f}")
    print(f"speed-up {naive_s / fast_s:.1f}x; max |cmc diff| {np.abs(cmc - ref_cmc).max():.2e}, "
          f"|mAP diff| {abs(mean_ap - ref_ap):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
