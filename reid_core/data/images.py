"""Image scanning (find corrupt files up front) and torch datasets that survive bad files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageFile, UnidentifiedImageError
from torch.utils.data import Dataset, default_collate

logger = logging.getLogger(__name__)

Transform = Callable[[Image.Image], Any]


@dataclass
class ImageScan:
    """Result of `scan_images`: decodable paths and the rest with a reason."""

    good: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # path -> reason


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    # PIL's flag is process-global; a library elsewhere may have set it to True,
    # which would let truncated files decode as half-grey images.
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def load_rgb(path: str) -> Image.Image:
    """Decode the whole file to an RGB image (raises OSError/ValueError when it cannot)."""
    with _strict_truncation(), Image.open(path) as img:
        return img.convert("RGB")


def check_image(path: str) -> str | None:
    """Return None when `path` decodes fully, else a short reason."""
    try:
        if os.path.getsize(path) == 0:
            return "zero-byte file"
    except OSError as err:
        return f"missing or unreadable: {err}"
    try:
        load_rgb(path)
    except UnidentifiedImageError:
        return "unreadable: not an image PIL can identify"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        text = str(err)
        kind = "truncated" if "truncated" in text.lower() else "decode error"
        return f"{kind}: {text}"
    return None


def scan_images(paths: Iterable[str], cache_file: str | os.PathLike | None = None) -> ImageScan:
    """Decode every image once and split the paths into good and bad.

    Parameters
    ----------
    paths : iterable of str
        Image files.
    cache_file : path, optional
        JSON verdicts of an earlier scan, keyed by path and (size, mtime): unchanged
        files are not decoded again (an edge rebuilds its learner on every message;
        at a camera site with 50,000 images decoding them all each time costs minutes).
        Written back after the scan.

    Returns
    -------
    ImageScan
        `good` keeps the input order; `bad` maps each failing path to a reason
        ('zero-byte file', 'unreadable: ...', 'truncated: ...', 'decode error: ...').
    """
    scan = ImageScan()
    cache = _read_scan_cache(cache_file)
    fresh: dict[str, list] = {}
    for path in paths:
        try:
            st = os.stat(path)
            key = [st.st_size, st.st_mtime_ns]
        except OSError:
            key = None
        hit = cache.get(path)
        if key is not None and hit is not None and hit[:2] == key:
            reason = hit[2]
        else:
            reason = check_image(path)
        if key is not None:
            fresh[path] = [*key, reason]
        if reason is None:
            scan.good.append(path)
        else:
            scan.bad[path] = reason
    if scan.bad:
        logger.warning("%d of %d image(s) failed to decode, e.g. %s: %s",
                       len(scan.bad), len(scan.bad) + len(scan.good),
                       *next(iter(scan.bad.items())))
    if cache_file is not None and fresh != cache:
        _write_scan_cache(cache_file, fresh)
    return scan


def _read_scan_cache(cache_file: str | os.PathLike | None) -> dict[str, list]:
    if cache_file is None or not os.path.exists(cache_file):
        return {}
    try:
        with open(cache_file) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError) as err:  # a damaged cache only costs a rescan
        logger.warning("image scan cache %s unreadable (%s); scanning again", cache_file, err)
        return {}


def _write_scan_cache(cache_file: str | os.PathLike, verdicts: dict[str, list]) -> None:
    tmp = f"{os.fspath(cache_file)}.tmp"
    with open(tmp, "w") as f:
        json.dump(verdicts, f)
    os.replace(tmp, cache_file)


def _load_or_none(path: str, transform: Transform | None) -> Any | None:
    try:
        img = load_rgb(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # The file changed after the scan; one lost image must not end an epoch.
        logger.warning("skipping image that failed to decode: %s (%s)", path, err)
        return None
    return transform(img) if transform is not None else img


class UnlabeledImageDataset(Dataset):
    """Training images with caller-given pseudo-labels: items are `(image, label, index)`.

    `index` is the position in `paths` (for memory banks). An item whose file fails
    to decode is None; use `collate_skip_none` in the DataLoader.
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int],
                 transform: Transform | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"paths and labels differ in length: {len(paths)} != {len(labels)}")
        self.paths = list(paths)
        self.labels = [int(x) for x in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int, int] | None:
        image = _load_or_none(self.paths[index], self.transform)
        return None if image is None else (image, self.labels[index], index)


class EvalImageDataset(Dataset):
    """Images for feature extraction: items are `(image, index)`, or None on a decode failure."""

    def __init__(self, paths: Sequence[str], transform: Transform | None = None) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int] | None:
        image = _load_or_none(self.paths[index], self.transform)
        return None if image is None else (image, index)


def collate_skip_none(batch: list[Any]) -> Any | None:
    """Collate a batch after dropping None items (images that failed to decode).

    Returns None when every item of the batch was None; the loop must skip such a
    batch (`if batch is None: continue`). The returned `index` tensor tells which
    images are present, so callers can mark the missing ones.
    """
    kept = [item for item in batch if item is not None]
    if not kept:
        return None
    return default_collate(kept)

