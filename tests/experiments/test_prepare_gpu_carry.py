"""scripts/prepare_gpu_carry.py: the GPU carry re-encodes a Market-layout tree, keeps names, packs it."""

import importlib.util
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from reid_core.data.market import read_market_layout

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_gpu_carry.py"
spec = importlib.util.spec_from_file_location("prepare_gpu_carry", SCRIPT)
prepare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare)

NAMES = {"bounding_box_train": ["0001_c1s1_000001_00.bmp", "0001_c2s1_000002_00.png"],
         "query": ["0002_c1s1_000003_00.jpg"], "bounding_box_test": ["0002_c2s1_000004_00.jpg"]}


def _shared(root: Path) -> Path:
    for split, names in NAMES.items():
        folder = root / "data" / "site_a" / split
        folder.mkdir(parents=True)
        for i, name in enumerate(names):
            Image.new("RGB", (48, 128), (40 * i, 90, 200)).save(folder / name)
    (root / "weights").mkdir()
    (root / "weights" / "mobilenet_v2_imagenet_features.pt").write_bytes(b"w")
    return root


def test_reencodes_every_image_at_the_size_keeping_names(tmp_path):
    src = _shared(tmp_path / "shared") / "data"
    assert prepare.reencode_tree(src, tmp_path / "out", 32, 16, 80) == 4
    for split, names in NAMES.items():
        got = sorted(p.name for p in (tmp_path / "out" / "site_a" / split).iterdir())
        assert got == sorted(Path(n).stem + ".jpg" for n in names)
        for p in (tmp_path / "out" / "site_a" / split).iterdir():
            with Image.open(p) as im:
                assert im.size == (16, 32)
    # identities and cameras still parse from the names (Market layout)
    dataset = read_market_layout(tmp_path / "out" / "site_a")
    assert sorted((s.pid, s.camid) for s in dataset.train) == [(1, 0), (1, 1)]


def test_missing_split_named(tmp_path):
    src = _shared(tmp_path / "shared") / "data"
    for p in (src / "site_a" / "query").iterdir():
        p.unlink()
    (src / "site_a" / "query").rmdir()
    with pytest.raises(FileNotFoundError, match="query"):
        prepare.reencode_tree(src, tmp_path / "out", 32, 16, 80)


def test_main_packs_data_site_and_weights(tmp_path):
    shared = _shared(tmp_path / "shared")
    assert prepare.main(["--shared", str(shared), "--out", str(tmp_path / "gpu"), "--height", "32", "--width", "16"]) == 0
    with tarfile.open(tmp_path / "gpu" / "data.tgz") as tar:
        assert "data/site_a/query/0002_c1s1_000003_00.jpg" in tar.getnames()
    with tarfile.open(tmp_path / "gpu" / "site.tgz") as tar:
        assert {"site/hydra", "site/omegaconf", "site/antlr4"} <= set(tar.getnames())
    assert (tmp_path / "gpu" / "weights" / "mobilenet_v2_imagenet_features.pt").read_bytes() == b"w"
