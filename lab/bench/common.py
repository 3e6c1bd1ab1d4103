"""What the clustering benchmarks share: clustered synthetic features, a timer with peak memory, a cell format."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

IMAGES_PER_IDENTITY = 17  # Market-1501: 12,936 images of 751 identities


def clustered_features(num_images: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Identity centres + camera shift + noise, L2-normalised (float32), and identities."""
    rng = np.random.default_rng(seed)
    num_ids = max(1, num_images // IMAGES_PER_IDENTITY)
    popularity = rng.gamma(2.0, size=num_ids)  # uneven images per identity, as in Market
    identity = rng.choice(num_ids, size=num_images, p=popularity / popularity.sum())
    camera = rng.integers(0, 6, size=num_images)
    feats = np.empty((num_images, dim), dtype=np.float32)
    centres = rng.standard_normal((num_ids, dim), dtype=np.float32)
    cam_shift = 0.3 * rng.standard_normal((6, dim), dtype=np.float32)
    for start in range(0, num_images, 4096):  # chunks keep temporaries small at 50k x 2048
        part = slice(start, start + 4096)
        noise = rng.standard_normal((len(identity[part]), dim), dtype=np.float32)
        feats[part] = centres[identity[part]] + cam_shift[camera[part]] + 0.8 * noise
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return feats, identity


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn``; return (result, seconds, peak RSS increase in MB).

    Resets the kernel's peak-RSS mark (/proc/self/clear_refs) when allowed, else
    samples RSS every 5 ms in a thread.
    """
    gc.collect()
    base = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        sampler = None
    except OSError:
        peak = [base]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.005):
                peak[0] = max(peak[0], _status_kib("VmRSS"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if sampler is None:
        high = _status_kib("VmHWM")
    else:
        done.set()
        sampler.join()
        high = peak[0]
    return result, seconds, max(0, high - base) / 1024


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
