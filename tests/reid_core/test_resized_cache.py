"""The decode-once cache of training images: same features, no second decode, changes noticed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid_core.config.schema import ModelConfig
from reid_core.data import resized_cache
from reid_core.data.resized_cache import ResizedImageCache, normalised_batches
from reid_core.data.transforms import eval_transform
from reid_core.features import extract_features
from reid_core.models import build_model


def write_images(folder: Path, count: int, seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        h, w = rng.integers(40, 90), rng.integers(20, 45)  # different sizes: the resize matters
        path = folder / f"{i:04d}_c1s1_{i:06d}_00.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def counted_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = resized_cache.load_rgb

    def counting(path: str):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(resized_cache, "load_rgb", counting)
    return calls


def test_rows_give_the_eval_transform_tensors_exactly(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img", 7)
    rows, ok = ResizedImageCache(tmp_path / "cache", 32, 16).load(paths)
    assert ok.all() and rows.shape == (7, 32, 16, 3)
    batches = list(normalised_batches(rows, ok, batch_size=3))
    assert [len(i) for _, i in batches] == [3, 3, 1]
    got = torch.cat([b for b, _ in batches])
    want = torch.stack([eval_transform(32, 16)(Image.open(p).convert("RGB")) for p in paths])
    assert torch.equal(got, want)


def test_features_bit_identical_and_second_pass_decodes_nothing(tmp_path: Path, counted_decodes: list[str]) -> None:
    paths = write_images(tmp_path / "img", 10)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny", embed_dim=16, weights=None, device="cpu"))
    cpu = torch.device("cpu")
    plain = extract_features(model, paths, 32, 16, 4, cpu)
    first = extract_features(model, paths, 32, 16, 4, cpu, cache_dir=tmp_path / "state")
    assert len(counted_decodes) == 10
    second = extract_features(model, paths, 32, 16, 4, cpu, which="embed", cache_dir=tmp_path / "state")
    assert len(counted_decodes) == 10  # read back, not decoded
    assert np.array_equal(plain, first)
    assert np.array_equal(extract_features(model, paths, 32, 16, 4, cpu, which="embed"), second)


def test_changed_and_new_files_are_decoded_again(tmp_path: Path, counted_decodes: list[str]) -> None:
    paths = write_images(tmp_path / "img", 5)
    cache = ResizedImageCache(tmp_path / "cache", 32, 16)
    cache.load(paths)
    counted_decodes.clear()
    Image.fromarray(np.full((50, 25, 3), 200, dtype=np.uint8)).save(paths[2])  # rewritten: new size
    st = os.stat(paths[2])
    os.utime(paths[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    extra = write_images(tmp_path / "more", 1, seed=3)
    rows, ok = cache.load([paths[0], paths[2], *extra])  # another subset and order
    assert counted_decodes == [paths[2], extra[0]]
    assert ok.all() and (rows[1] == 200).all()
    counted_decodes.clear()
    again, _ = cache.load([paths[0], paths[2], *extra])
    assert counted_decodes == [] and np.array_equal(again, rows)


def test_unreadable_file_is_masked_not_fatal(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img", 3)
    Path(paths[1]).write_bytes(b"not a png")
    rows, ok = ResizedImageCache(tmp_path / "cache", 32, 16).load(paths)
    assert ok.tolist() == [True, False, True]
    assert [i.tolist() for _, i in normalised_batches(rows, ok, 8)] == [[0, 2]]
    with pytest.raises(ValueError, match="1 of 3 image"):
        model = build_model(ModelConfig(arch="tiny", embed_dim=16, weights=None, device="cpu"))
        extract_features(model, paths, 32, 16, 4, torch.device("cpu"), cache_dir=tmp_path / "cache")


def test_damaged_cache_is_rebuilt(tmp_path: Path, counted_decodes: list[str]) -> None:
    paths = write_images(tmp_path / "img", 4)
    cache = ResizedImageCache(tmp_path / "cache", 32, 16)
    want, _ = cache.load(paths)
    want = np.array(want)
    cache.index_file.write_text("{ not json")
    counted_decodes.clear()
    rows, ok = cache.load(paths)
    assert len(counted_decodes) == 4 and ok.all() and np.array_equal(rows, want)
    np.save(cache.rows_file, np.zeros((1, 8, 8, 3), dtype=np.uint8))  # wrong shape for 32x16
    rows, _ = cache.load(paths)
    assert np.array_equal(rows, want)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image size"):
        ResizedImageCache(tmp_path, 0, 16)
    with pytest.raises(ValueError, match="batch_size"):
        list(normalised_batches(np.zeros((1, 4, 4, 3), np.uint8), np.ones(1, bool), 0))
