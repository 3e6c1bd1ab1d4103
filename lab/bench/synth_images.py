"""Fast synthetic pedestrian-ish images for the speed benchmarks (not the demo generator).

Each identity is two flat colours (upper and lower body) plus per-image noise and a
camera-dependent brightness, written as small PNGs with Market-1501 file names
(``0001_c1s1_000001_00.png``), so `read_market_layout` and the camera ids work.
Clustered colours give the merge real structure; the pixels carry no meaning
beyond that. 50,000 images at 64x32 take well under a minute to write.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from reid_core.data.market import SPLIT_FOLDERS

from lab.bench.common import IMAGES_PER_IDENTITY  # Market-1501: 12,936 training images of 751 identities


def _image(rng: np.random.Generator, colours: np.ndarray, camera_gain: float,
           height: int, width: int) -> Image.Image:
    pixels = np.empty((height, width, 3), dtype=np.float32)
    pixels[: height // 2] = colours[0]
    pixels[height // 2:] = colours[1]
    pixels = pixels * camera_gain + rng.normal(0.0, 18.0, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_split(folder: str | os.PathLike, num_images: int, height: int = 64, width: int = 32,
                num_cameras: int = 6, seed: int = 0, first_pid: int = 1,
                camera_offset: int = 0) -> list[str]:
    """Write `num_images` PNGs into `folder` (created); return their paths in order.

    Identities take ``IMAGES_PER_IDENTITY`` consecutive images, cycling over cameras
    (image i is seen by camera ``(i + camera_offset) % num_cameras``).
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gains = rng.uniform(0.7, 1.3, num_cameras)
    paths, colours = [], None
    for i in range(num_images):
        if i % IMAGES_PER_IDENTITY == 0:
            colours = rng.uniform(0, 255, (2, 3))
        pid = first_pid + i // IMAGES_PER_IDENTITY
        cam = (i + camera_offset) % num_cameras
        path = folder / f"{pid:04d}_c{cam + 1}s1_{i:06d}_00.png"
        _image(rng, colours, gains[cam], height, width).save(path, compress_level=1)
        paths.append(str(path))
    return paths


def write_market_folder(root: str | os.PathLike, num_train: int, height: int = 64, width: int = 32,
                        num_test: int = 200, seed: int = 0) -> Path:
    """A Market-1501-layout folder: `num_train` training images, `num_test` query and gallery each.

    Written once: a folder that already holds the same counts is reused (returns `root`).
    """
    root = Path(root)
    counts = {"train": num_train, "query": num_test, "gallery": num_test}
    marker = root / f".bench_images_{num_train}_{num_test}_{height}x{width}_{seed}"
    if marker.exists():
        return root
    for split, folder in SPLIT_FOLDERS.items():
        # query and gallery share identities; the gallery twin of a query is seen by the next camera
        write_split(root / folder, counts[split], height, width, seed=seed + (split != "train"),
                    first_pid=1 if split == "train" else 9001, camera_offset=int(split == "gallery"))
    marker.touch()
    return root
