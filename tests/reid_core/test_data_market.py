"""Tests for the Market-1501 / FedReID layout readers and the dataset registry."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reid_core.data import (
    KNOWN_DATASETS,
    ReIDSample,
    canonical_dataset_name,
    parse_market_name,
    dataset_folder,
    read_fedreid_layout,
    read_market_layout,
    read_reid_root,
    unlabeled_paths,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def make_tree(root: Path, files: dict[str, list[str]]) -> Path:
    """Create empty files `root/<folder>/<name>` (the parser never opens them)."""
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).touch()
    return root


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "market", {
        "bounding_box_train": [
            "0002_c1s1_000451_03.jpg", "0002_c2s1_000451_03.JPG", "0007_c3s2_000111_01.jpeg",
            "0003_c1s1_1.bmp", "0005_c12s1_000001_00.png", "-1_c1s1_000001_00.jpg",
            "badname.jpg", "0004_c0s1_000001_00.png", "Thumbs.db", "notes.txt",
        ],
        "query": ["0002_c3s1_000001_00.png"],
        "bounding_box_test": [
            "0000_c1s1_000001_00.jpg", "-1_c2s1_000001_00.jpg", "0002_c2_f0046985.jpg",
        ],
    })


@pytest.mark.parametrize("name, expected", [
    ("0002_c1s1_000451_03.jpg", (2, 0)),
    ("0005_c2_f0046985.jpg", (5, 1)),  # DukeMTMC
    ("-1_c3s1_000001_00.jpg", (-1, 2)),
    ("/a/b/0012_c10s1_000001_00.png", (12, 9)),
    ("badname.jpg", None),
    ("0004_c0s1_000001_00.png", None),  # camera numbers start at 1
])
def test_parse_market_name(name, expected):
    """Names parse into (pid, 0-based camid) or None."""
    assert parse_market_name(name) == expected


def test_read_market_layout_parses_odd_names(market_root, caplog):
    """Junk dropped, distractors kept, extensions case-insensitive, bad names counted."""
    # Execute
    with caplog.at_level(logging.WARNING):
        ds = read_market_layout(market_root)

    # Assert
    names = [Path(s.path).name for s in ds.train]
    assert names == ["0002_c1s1_000451_03.jpg", "0002_c2s1_000451_03.JPG", "0003_c1s1_1.bmp",
                     "0005_c12s1_000001_00.png", "0007_c3s2_000111_01.jpeg"]
    assert [(s.pid, s.camid) for s in ds.train] == [(2, 0), (2, 1), (3, 0), (5, 11), (7, 2)]
    assert ds.query == [ReIDSample(str(market_root / "query" / "0002_c3s1_000001_00.png"), 2, 2)]
    assert [(s.pid, s.camid) for s in ds.gallery] == [(0, 0), (2, 1)]
    assert sorted(Path(p).name for p in ds.unparsed) == ["0004_c0s1_000001_00.png", "badname.jpg"]
    assert "skipped 2 image file(s)" in caplog.text
    assert ds.cameras == (0, 1, 2, 11)
    assert ds.name == "market"


def test_summary_counts(market_root):
    """The summary lists ids / images / cameras per split."""
    text = read_market_layout(market_root).summary()
    assert "train   |     4 |        5 |         4" in text
    assert "gallery |     2 |        2 |         2" in text


def test_missing_folder_names_expected_layout(tmp_path):
    """One clear error naming the missing folder and the expected layout."""
    root = make_tree(tmp_path / "x", {"bounding_box_train": ["0001_c1s1_0_00.jpg"], "query": []})
    with pytest.raises(FileNotFoundError) as err:
        read_market_layout(root)
    message = str(err.value)
    assert "missing folder(s) bounding_box_test" in message
    assert "bounding_box_train/" in message and "query/" in message
    assert "<pid>_c<camera>" in message


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        read_market_layout(tmp_path / "nope")


def test_layout_without_images_is_an_error(tmp_path):
    root = make_tree(tmp_path / "empty", {"bounding_box_train": ["readme.txt"], "query": [],
                                          "bounding_box_test": ["junk"]})
    with pytest.raises(ValueError, match="no usable images"):
        read_market_layout(root)


def test_unlabeled_paths(market_root):
    """Training sees only paths."""
    ds = read_market_layout(market_root)
    paths = unlabeled_paths(ds.train)
    assert paths == [s.path for s in ds.train]
    assert all(isinstance(p, str) for p in paths)


def test_registry_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        canonical_dataset_name("msmt17")
    for name in ("market1501", "dukemtmc", "cuhk03_np", "viper", "prid2011", "cuhk01",
                 "3dpes", "ilids"):
        assert name in str(err.value)
        assert name in KNOWN_DATASETS


def test_paper_client_found_under_a_known_spelling_and_read_in_either_layout(tmp_path):
    """data=paper names clients by registry key; the folder may carry another spelling."""
    make_tree(tmp_path / "Market-1501", {"bounding_box_train": ["0001_c1s1_0_00.jpg"],
                                         "query": [], "bounding_box_test": []})
    assert canonical_dataset_name("Market-1501") == "market1501"
    folder = dataset_folder(tmp_path, "market1501")
    assert folder == str(tmp_path / "Market-1501")
    assert len(read_reid_root(folder).train) == 1
    assert dataset_folder(tmp_path, "viper") == str(tmp_path / "viper")  # not there: the plain name


def test_paper_experiment_resolves_client_folders_through_the_registry(tmp_path):
    from reid_core.config.settings import load_settings

    make_tree(tmp_path / "DukeMTMC-reID", {"bounding_box_train": ["0001_c1s1_0_00.jpg"],
                                           "query": [], "bounding_box_test": []})
    s = load_settings(["experiment=paper", f"data.root={tmp_path}"], check_data=False)
    assert s.client_dir("dukemtmc") == str(tmp_path / "DukeMTMC-reID")


def test_fedreid_layout(tmp_path):
    """FedReID `pytorch/<split>/<pid>/` folders: pid from the folder, camera from the name."""
    root = tmp_path / "viper"
    make_tree(root / "pytorch", {
        "train_all/0001": ["cam_0_00001_00001.png", "cam_1_00001_00002.png"],
        "train_all/-1": ["cam_0_00009_00001.png"],
        "query/0002": ["cam_0_00002_00001.png"],
        "gallery/0002": ["0002_c2s1_000001_00.jpg"],
        "gallery/0000": ["cam_1_00000_00001.png", "strange.png"],
    })
    ds = read_reid_root(root)
    assert [(s.pid, s.camid) for s in ds.train] == [(1, 0), (1, 1)]
    assert [(s.pid, s.camid) for s in ds.query] == [(2, 0)]
    assert [(s.pid, s.camid) for s in ds.gallery] == [(0, 1), (2, 1)]
    assert len(ds.unparsed) == 1
    assert read_fedreid_layout(root / "pytorch").train == ds.train


def test_unknown_layout_error_names_both_layouts(tmp_path):
    root = make_tree(tmp_path / "odd", {"images": ["0001_c1s1_0_00.jpg"]})
    with pytest.raises(FileNotFoundError) as err:
        read_reid_root(root)
    assert "bounding_box_test" in str(err.value) and "train_all" in str(err.value)


@pytest.mark.shared
def test_viper_counts():
    """VIPeR as prepared in ../shared: 632 train / 316 query / 316 gallery."""
    root = SHARED / "data" / "viper"
    if not root.is_dir():
        pytest.skip(f"shared VIPeR data not found at {root}")
    ds = read_reid_root(dataset_folder(root.parent, "viper"))
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (632, 316, 316)
    assert not ds.unparsed
    assert len({s.pid for s in ds.train} & {s.pid for s in ds.query}) == 0
