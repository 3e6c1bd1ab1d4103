"""Tests for image scanning, the bad-file-tolerant datasets and the transforms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from reid_core.data import (
    EvalImageDataset,
    RandomSizedRectCrop,
    UnlabeledImageDataset,
    collate_skip_none,
    eval_transform,
    scan_images,
    train_transform,
)


def save_image(path: Path, fmt: str, size: tuple[int, int] = (32, 64)) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "png": save_image(tmp_path / "0001_c1s1_000001_00.png", "PNG"),
        "jpg": save_image(tmp_path / "0001_c2s1_000001_00.jpg", "JPEG"),
        "bmp": save_image(tmp_path / "0002_c1s1_000001_00.bmp", "BMP"),
        "zero": tmp_path / "0003_c1s1_000001_00.jpg",
        "text": tmp_path / "0004_c1s1_000001_00.jpg",
        "trunc_png": truncate(save_image(tmp_path / "0005_c1s1_000001_00.png", "PNG")),
        "trunc_jpg": truncate(save_image(tmp_path / "0006_c1s1_000001_00.jpg", "JPEG")),
    }
    files["zero"].touch()
    files["text"].write_text("this is not a picture\n")
    return files


def test_scan_images_sorts_good_and_bad(image_files):
    """Zero-byte, non-image and truncated files are reported with a reason."""
    # Execute
    scan = scan_images(str(p) for p in image_files.values())

    # Assert
    assert scan.good == [str(image_files[k]) for k in ("png", "jpg", "bmp")]
    assert set(scan.bad) == {str(image_files[k]) for k in ("zero", "text", "trunc_png", "trunc_jpg")}
    assert scan.bad[str(image_files["zero"])] == "zero-byte file"
    assert scan.bad[str(image_files["text"])].startswith("unreadable")
    assert scan.bad[str(image_files["trunc_jpg"])].startswith("truncated")
    assert scan.bad[str(image_files["trunc_png"])].startswith(("truncated", "decode error"))


def test_scan_missing_file(tmp_path):
    scan = scan_images([str(tmp_path / "gone.png")])
    assert scan.good == [] and "missing" in scan.bad[str(tmp_path / "gone.png")]


def test_dataset_skips_file_corrupted_after_scan(image_files):
    """A file that breaks after the scan yields None; collate drops it, the epoch goes on."""
    # Prepare
    paths = [str(image_files[k]) for k in ("png", "jpg", "bmp")]
    dataset = UnlabeledImageDataset(paths, [7, 8, 9], eval_transform(16, 8))
    truncate(image_files["jpg"])

    # Execute
    batches = list(DataLoader(dataset, batch_size=3, collate_fn=collate_skip_none))

    # Assert
    assert dataset[1] is None
    images, labels, index = batches[0]
    assert images.shape == (2, 3, 16, 8)
    assert labels.tolist() == [7, 9]
    assert index.tolist() == [0, 2]


def test_collate_all_none_batch_is_none(image_files):
    """A batch where every image failed collates to None (callers skip it)."""
    dataset = EvalImageDataset([str(image_files["zero"]), str(image_files["text"])],
                               eval_transform(16, 8))
    batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_skip_none))
    assert batches == [None]
    assert collate_skip_none([]) is None


def test_eval_dataset_items(image_files):
    dataset = EvalImageDataset([str(image_files["png"]), str(image_files["bmp"])],
                               eval_transform(16, 8))
    image, index = dataset[1]
    assert image.shape == (3, 16, 8) and index == 1
    assert image.dtype == torch.float32


def test_unlabeled_dataset_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        UnlabeledImageDataset(["a.png", "b.png"], [0], None)


def test_random_sized_rect_crop_box_follows_paper(monkeypatch):
    """Crops have area fraction in [0.64, 1] and h/w in [2, 3] (up to rounding)."""
    # Prepare
    boxes: list[tuple[int, int, int, int]] = []
    original_crop = Image.Image.crop

    def record_crop(self, box=None):
        boxes.append(box)
        return original_crop(self, box)

    monkeypatch.setattr(Image.Image, "crop", record_crop)
    torch.manual_seed(0)
    img = Image.new("RGB", (100, 300))  # (w, h): most tries fit
    crop = RandomSizedRectCrop(64, 32)

    # Execute
    outputs = [crop(img) for _ in range(50)]

    # Assert
    assert all(o.size == (32, 64) for o in outputs)
    assert len(boxes) == 50
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        assert 0 <= x1 and x2 <= 100 and 0 <= y1 and y2 <= 300
        assert 0.64 - 0.02 <= w * h / 30000 <= 1.0 + 0.02
        assert 2 - 0.05 <= h / w <= 3 + 0.05


def test_random_sized_rect_crop_falls_back_to_resize(monkeypatch):
    """A wide image admits no tall crop: the whole image is resized."""
    monkeypatch.setattr(Image.Image, "crop", lambda *a, **k: pytest.fail("crop was called"))
    out = RandomSizedRectCrop(64, 32)(Image.new("RGB", (100, 10)))
    assert out.size == (32, 64)


def test_transforms_shapes_and_normalisation():
    img = Image.new("RGB", (48, 128), (124, 116, 104))  # about the ImageNet mean colour
    x = eval_transform(64, 32)(img)
    assert x.shape == (3, 64, 32)
    assert math.isclose(float(x.abs().max()), 0.0, abs_tol=0.02)
    torch.manual_seed(0)
    assert train_transform(64, 32)(img).shape == (3, 64, 32)


def test_scan_cache_decodes_only_new_or_changed_files(image_files, tmp_path, monkeypatch):
    import os

    from reid_core.data import images as images_module

    paths = [str(p) for p in image_files.values()]
    cache = tmp_path / "scan.json"
    first = scan_images(paths, cache_file=cache)
    decoded: list[str] = []
    real_check = images_module.check_image
    monkeypatch.setattr(images_module, "check_image", lambda p: decoded.append(p) or real_check(p))
    again = scan_images(paths, cache_file=cache)
    assert decoded == [] and again.good == first.good and again.bad == first.bad
    good = first.good[0]
    truncate(Path(good))  # changed size: decoded again and now bad
    os.utime(good, ns=(1, 1))
    third = scan_images(paths, cache_file=cache)
    assert decoded == [good] and good in third.bad
    cache.write_text("{not json")  # a damaged cache only costs a rescan
    assert scan_images(paths, cache_file=cache).bad == third.bad
