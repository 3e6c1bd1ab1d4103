"""Market-1501 layout reader: folders of images named `PPPP_cC...` -> ReIDSample lists."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
# torchreid's pattern; `\d+` (not `\d`) so cameras >= 10 also parse. Matches Market
# (`0002_c1s1_000451_03.jpg`) and DukeMTMC (`0005_c2_f0046985.jpg`) names.
MARKET_NAME_PATTERN = re.compile(r"([-\d]+)_c(\d+)")
JUNK_PID = -1
DISTRACTOR_PID = 0
MARKET_LAYOUT_HELP = (
    "expected Market-1501 layout: <root>/bounding_box_train/, <root>/query/, "
    "<root>/bounding_box_test/ holding images (.jpg .jpeg .png .bmp) named "
    "'<pid>_c<camera>...', e.g. 0002_c1s1_000451_03.jpg (pid -1 = junk, 0 = distractor, "
    "camera 1-based)"
)


@dataclass(frozen=True)
class ReIDSample:
    """One image: its path, person id (0 = distractor) and 0-based camera id."""

    path: str
    pid: int
    camid: int


@dataclass
class ReIDDataset:
    """The three splits of one ReID dataset (one federated client)."""

    name: str
    root: str
    train: list[ReIDSample]
    query: list[ReIDSample]
    gallery: list[ReIDSample]
    unparsed: list[str] = field(default_factory=list)  # image files whose name did not parse

    @property
    def cameras(self) -> tuple[int, ...]:
        """Sorted 0-based camera ids seen in any split."""
        return tuple(sorted({s.camid for s in (*self.train, *self.query, *self.gallery)}))

    def summary(self) -> str:
        """Return a small table: #ids / #images / #cameras per split."""
        lines = [f"dataset {self.name} ({self.root})", "  split   | # ids | # images | # cameras"]
        for split in ("train", "query", "gallery"):
            samples: list[ReIDSample] = getattr(self, split)
            ids = len({s.pid for s in samples})
            cams = len({s.camid for s in samples})
            lines.append(f"  {split:<7} | {ids:5d} | {len(samples):8d} | {cams:9d}")
        if self.unparsed:
            lines.append(f"  ({len(self.unparsed)} image files with unparseable names skipped)")
        return "\n".join(lines)


def is_image_file(name: str) -> bool:
    """Return True for the image extensions ReID sets use (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def parse_market_name(filename: str) -> tuple[int, int] | None:
    """Parse `(pid, camid)` from a Market/Duke file name; camid is 0-based.

    Returns None when the name does not match `<pid>_c<camera>` or the camera is 0.
    """
    match = MARKET_NAME_PATTERN.search(os.path.basename(filename))
    if match is None:
        return None
    pid, camera = int(match.group(1)), int(match.group(2))
    if camera < 1:
        return None
    return pid, camera - 1


def _read_split(folder: str, unparsed: list[str]) -> list[ReIDSample]:
    samples = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not is_image_file(name) or not os.path.isfile(path):
            continue
        parsed = parse_market_name(name)
        if parsed is None:
            unparsed.append(path)
            continue
        pid, camid = parsed
        if pid == JUNK_PID:
            continue
        samples.append(ReIDSample(path=path, pid=pid, camid=camid))
    return samples


def read_market_layout(root: str | os.PathLike[str], name: str | None = None) -> ReIDDataset:
    """Read a dataset in Market-1501 layout.

    Parameters
    ----------
    root : path
        Folder holding `bounding_box_train/`, `query/` and `bounding_box_test/`.
    name : str, optional
        Dataset name; defaults to the folder name.

    Returns
    -------
    ReIDDataset
        Splits sorted by file name; junk (pid -1) dropped, distractors (pid 0) kept.

    Raises
    ------
    FileNotFoundError
        When `root` or one of the three split folders is missing.
    ValueError
        When the folders hold no image with a parseable name.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder not found: {root!r}; {MARKET_LAYOUT_HELP}")
    missing = [f for f in SPLIT_FOLDERS.values() if not os.path.isdir(os.path.join(root, f))]
    if missing:
        raise FileNotFoundError(
            f"{root!r} is not in Market-1501 layout: missing folder(s) {', '.join(missing)}; "
            f"{MARKET_LAYOUT_HELP}"
        )
    unparsed: list[str] = []
    splits = {
        split: _read_split(os.path.join(root, folder), unparsed)
        for split, folder in SPLIT_FOLDERS.items()
    }
    if unparsed:
        logger.warning(
            "%s: skipped %d image file(s) whose name does not match '<pid>_c<camera>', e.g. %s",
            root, len(unparsed), ", ".join(os.path.basename(p) for p in unparsed[:3]),
        )
    if not any(splits.values()):
        raise ValueError(f"no usable images under {root!r}; {MARKET_LAYOUT_HELP}")
    for split, samples in splits.items():
        if not samples:
            logger.warning("%s: split %r is empty", root, split)
    dataset_name = name or os.path.basename(os.path.normpath(root))
    return ReIDDataset(name=dataset_name, root=root, unparsed=unparsed, **splits)


def unlabeled_paths(samples: Iterable[ReIDSample]) -> list[str]:
    """Return only the image paths: what unsupervised training may see (no pids, no cameras)."""
    return [s.path for s in samples]

