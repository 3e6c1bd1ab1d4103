"""The paper's datasets by name, and the FedReID `pytorch/<split>/<pid>/` layout."""

from __future__ import annotations

import logging
import os
import re
from types import MappingProxyType

from reid_core.data.market import (
    JUNK_PID,
    MARKET_LAYOUT_HELP,
    SPLIT_FOLDERS,
    ReIDDataset,
    ReIDSample,
    is_image_file,
    parse_market_name,
    read_market_layout,
)

logger = logging.getLogger(__name__)

FEDREID_SPLIT_FOLDERS = {"train": "train_all", "query": "query", "gallery": "gallery"}
# Small sets renamed by FedReID's prepare scripts: `cam_0_00000_00001.png` (camera 0-based).
FEDREID_CAM_PATTERN = re.compile(r"^cam_(\d+)_")
FEDREID_LAYOUT_HELP = (
    "or FedReID layout: <root>/pytorch/{train_all,query,gallery}/<pid>/<image> with images "
    "named 'cam_<camera>_...' (0-based) or in Market style"
)

# name -> folder names it is commonly stored under (FedReID / torchreid spellings).
KNOWN_DATASETS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    "market1501": ("market1501", "Market-1501", "Market-1501-v15.09.15", "market"),
    "dukemtmc": ("dukemtmc", "DukeMTMC-reID", "dukemtmc-reid", "duke"),
    "cuhk03_np": ("cuhk03_np", "cuhk03-np-detected", "cuhk03-np", "cuhk03"),
    "viper": ("viper", "VIPeR"),
    "prid2011": ("prid2011", "prid", "prid_2011"),
    "cuhk01": ("cuhk01", "CUHK01"),
    "3dpes": ("3dpes", "3DPeS"),
    "ilids": ("ilids", "iLIDS", "ilids-vid", "i-LIDS"),
})


def _fedreid_camid(filename: str) -> int | None:
    match = FEDREID_CAM_PATTERN.match(filename)
    if match is not None:
        return int(match.group(1))
    parsed = parse_market_name(filename)
    return None if parsed is None else parsed[1]


def _fedreid_base(root: str) -> str | None:
    for base in (os.path.join(root, "pytorch"), root):
        if all(os.path.isdir(os.path.join(base, f)) for f in FEDREID_SPLIT_FOLDERS.values()):
            return base
    return None


def read_fedreid_layout(root: str | os.PathLike[str], name: str | None = None) -> ReIDDataset:
    """Read FedReID's `pytorch/{train_all,query,gallery}/<pid>/<file>` layout.

    The pid comes from the folder name (`-1` = junk, dropped; `0000` = distractor),
    the camera from `cam_<c>_` (0-based) or a Market-style `_c<c>` (1-based) file name.

    Raises
    ------
    FileNotFoundError
        When neither `<root>/pytorch/` nor `<root>` holds the three split folders.
    """
    root = os.fspath(root)
    base = _fedreid_base(root)
    if base is None:
        raise FileNotFoundError(f"{root!r} is not in FedReID layout; expected {FEDREID_LAYOUT_HELP}")
    unparsed: list[str] = []
    splits: dict[str, list[ReIDSample]] = {}
    for split, folder in FEDREID_SPLIT_FOLDERS.items():
        samples = []
        split_dir = os.path.join(base, folder)
        for pid_name in sorted(os.listdir(split_dir)):
            pid_dir = os.path.join(split_dir, pid_name)
            if not os.path.isdir(pid_dir):
                continue
            for file in sorted(f for f in os.listdir(pid_dir) if is_image_file(f)):
                camid = _fedreid_camid(file)
                if camid is None or not re.fullmatch(r"-?\d+", pid_name):
                    unparsed.append(os.path.join(pid_dir, file))
                elif int(pid_name) != JUNK_PID:
                    samples.append(ReIDSample(os.path.join(pid_dir, file), int(pid_name), camid))
        splits[split] = samples
    if unparsed:
        logger.warning("%s: skipped %d image file(s) with unparseable pid/camera", root, len(unparsed))
    if not any(splits.values()):
        raise ValueError(f"no usable images under {base!r}; expected {FEDREID_LAYOUT_HELP}")
    dataset_name = name or os.path.basename(os.path.normpath(root))
    return ReIDDataset(name=dataset_name, root=root, unparsed=unparsed, **splits)


def read_reid_root(root: str | os.PathLike[str], name: str | None = None) -> ReIDDataset:
    """Read `root` in Market-1501 layout, or else in FedReID `pytorch/` layout.

    Raises
    ------
    FileNotFoundError
        When `root` is in neither layout; the message names both.
    """
    root = os.fspath(root)
    present = {f: os.path.isdir(os.path.join(root, f)) for f in SPLIT_FOLDERS.values()}
    if all(present.values()):
        return read_market_layout(root, name)
    if _fedreid_base(root) is not None:
        return read_fedreid_layout(root, name)
    missing = ", ".join(f for f, ok in present.items() if not ok)
    raise FileNotFoundError(
        f"{root!r} is in no known layout (missing {missing}); {MARKET_LAYOUT_HELP}; "
        f"{FEDREID_LAYOUT_HELP}"
    )


def canonical_dataset_name(name: str) -> str:
    """Map a dataset name or folder spelling ('Market-1501', 'cuhk03-np') to its registry key.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    def norm(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    for key, spellings in KNOWN_DATASETS.items():
        if norm(name) in {norm(s) for s in (key, *spellings)}:
            return key
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(KNOWN_DATASETS)}")


def dataset_folder(root: str | os.PathLike[str], name: str) -> str:
    """The folder of client `name` under `root`: `root/name`, or else one of the paper's spellings of it.

    `data=paper` names its clients by the registry's keys (market1501, dukemtmc, ...); a
    folder prepared as 'Market-1501' or 'DukeMTMC-reID' is found under those names too.
    """
    root = os.fspath(root)
    plain = os.path.join(root, name)
    if os.path.isdir(plain):
        return plain
    try:
        key = canonical_dataset_name(name)
    except ValueError:
        return plain
    for spelling in KNOWN_DATASETS[key]:
        candidate = os.path.join(root, spelling)
        if os.path.isdir(candidate):
            return candidate
    return plain
