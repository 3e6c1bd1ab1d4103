"""Training images decoded and resized once, kept on the edge's disk for every feature pass.

An edge extracts features of all its training images twice a round (memory
initialisation before training, merge features after it) and rebuilds its learner on
every message. Decoding a file costs about as much as the forward pass of a small
network (docs/results.md, `fedureid bench edge`), so each pass decoded every image
again. Here each image is decoded and resized (the eval transform's resize) once, and
stored as uint8 rows of one ``.npy`` file beside an index keyed by path, file size and
modification time, like the image scan's cache: a changed or new file is decoded
again, an unchanged one never. Reading rows back gives exactly the tensors
``eval_transform`` makes (same resize, same ToTensor and normalisation arithmetic).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from reid_core.data.images import load_rgb
from reid_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform

logger = logging.getLogger(__name__)


def _file_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class ResizedImageCache:
    """uint8 (N, height, width, 3) images of one edge at one input size, on disk.

    Files: ``resized_{H}x{W}.npy`` (rows) and ``resized_{H}x{W}.json`` (path ->
    [size, mtime_ns, row]) in ``folder``. A damaged cache is rebuilt, never trusted.
    """

    def __init__(self, folder: str | os.PathLike, height: int, width: int) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        self.folder = Path(folder)
        self.height, self.width = height, width
        self.rows_file = self.folder / f"resized_{height}x{width}.npy"
        self.index_file = self.folder / f"resized_{height}x{width}.json"
        self._resize = eval_transform(height, width).transforms[0]  # the eval transform's own resize, not a copy

    def _read(self) -> tuple[dict[str, list[int]], np.ndarray | None]:
        if not (self.rows_file.exists() and self.index_file.exists()):
            return {}, None
        try:
            index = json.loads(self.index_file.read_text())
            rows = np.load(self.rows_file, mmap_mode="r")
            if rows.ndim != 4 or rows.shape[1:] != (self.height, self.width, 3) or rows.dtype != np.uint8:
                raise ValueError(f"rows of shape {rows.shape} and type {rows.dtype}")
            if any(not (isinstance(v, list) and len(v) == 3 and 0 <= v[2] < len(rows)) for v in index.values()):
                raise ValueError("index rows out of range")
            return index, rows
        except (OSError, ValueError) as err:  # a damaged cache only costs decoding again
            logger.warning("resized image cache in %s unreadable (%s); decoding again", self.folder, err)
            return {}, None

    def _decode(self, path: str) -> np.ndarray | None:
        try:
            return np.asarray(self._resize(load_rgb(path)), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as err:  # changed after the scan: its row stays missing
            logger.warning("skipping image that failed to decode: %s (%s)", path, err)
            return None

    def load(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for `paths` (in order) and a mask of the ones that decoded.

        Unchanged files come from the cache; the others are decoded now and the cache
        is rewritten to hold exactly `paths` (atomically: a crash leaves the old one).
        """
        index, old = self._read()
        if old is not None and len(old) == len(paths) == len(index) and all(
                index.get(p, [None, None, -1])[2] == i and index[p][:2] == _file_key(p) for i, p in enumerate(paths)):
            return old, np.ones(len(paths), dtype=bool)  # all unchanged, same order: the mapped file itself
        out = np.zeros((len(paths), self.height, self.width, 3), dtype=np.uint8)
        ok = np.zeros(len(paths), dtype=bool)
        fresh: dict[str, list[int]] = {}
        decoded = 0
        for i, path in enumerate(paths):
            key = _file_key(path)
            hit = index.get(path)
            if old is not None and key is not None and hit is not None and hit[:2] == key:
                out[i], ok[i] = old[hit[2]], True
            else:
                image = self._decode(path) if key is not None else None
                decoded += 1
                if image is not None:
                    out[i], ok[i] = image, True
            if ok[i] and key is not None:
                fresh[path] = [*key, i]
        if decoded or len(fresh) != len(index):
            self._write(out, fresh)
        logger.info("resized image cache %s: %d of %d image(s) decoded", self.rows_file.name, decoded, len(paths))
        return out, ok

    def _write(self, rows: np.ndarray, index: dict[str, list[int]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp_rows, tmp_index = self.rows_file.with_suffix(".tmp.npy"), self.index_file.with_suffix(".tmp.json")
        np.save(tmp_rows, rows)
        tmp_index.write_text(json.dumps(index))
        os.replace(tmp_rows, self.rows_file)  # rows first: an index never points past its rows
        os.replace(tmp_index, self.index_file)


def normalised_batches(rows: np.ndarray, ok: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, index) batches of the decoded rows, as ``eval_transform`` would give them.

    Same arithmetic as ToTensor (float32 / 255) and Normalize (subtract, divide), so
    the features equal those of the per-image path bit for bit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    kept = np.flatnonzero(ok)
    for start in range(0, len(kept), batch_size):
        index = kept[start:start + batch_size]
        images = torch.from_numpy(rows[index]).permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
        yield images.sub_(mean).div_(std), torch.from_numpy(index)
