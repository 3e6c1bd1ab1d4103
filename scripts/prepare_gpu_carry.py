"""Build .gpu/, what scripts/gpu_learners.sh needs on a lent GPU with no package index.

The device tool carries at most 64 MiB, counting each file's overhead; ../shared/data is ~177 MB
of images. So the images are re-encoded once at a smaller size (192x96 JPEG quality 78 by
default: 43 MB as one archive; the loader resizes them to the run's input size) and packed into
.gpu/data.tgz; the ImageNet weights are copied, and the pure-Python packages the device lacks
(hydra, omegaconf, antlr4) are packed from this venv into .gpu/site.tgz. File names (identity,
camera) are kept, so the Market-layout loaders read them as before. .gpu/ must stay out of git
(`echo /.gpu/ >> .git/info/exclude`): it holds images that must never be published.

Run: ``.venv/bin/python scripts/prepare_gpu_carry.py [--shared ../shared] [--height 192 --width 96]``
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from PIL import Image

SPLITS = ("bounding_box_train", "query", "bounding_box_test")
SITE_PACKAGES = ("hydra", "omegaconf", "antlr4")


def reencode_tree(src: Path, dst: Path, height: int, width: int, quality: int) -> int:
    """Every client's Market-layout splits under `src`, resized to height x width JPEG under `dst`."""
    count = 0
    clients = sorted(p for p in src.iterdir() if p.is_dir())
    if not clients:
        raise FileNotFoundError(f"no client folders under {src}")
    for client in clients:
        for split in SPLITS:
            folder = client / split
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder} is missing (Market layout: {', '.join(SPLITS)})")
            out = dst / client.name / split
            out.mkdir(parents=True, exist_ok=True)
            for image in sorted(folder.iterdir()):
                with Image.open(image) as im:
                    im.convert("RGB").resize((width, height), Image.BILINEAR).save(
                        out / f"{image.stem}.jpg", quality=quality)
                count += 1
    return count


def pack(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, default=Path(".gpu"))
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--quality", type=int, default=78)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        n = reencode_tree(args.shared / "data", data, args.height, args.width, args.quality)
        pack(data, args.out / "data.tgz")
        site = Path(tmp) / "site"
        for name in SITE_PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise ModuleNotFoundError(f"{name} is not installed here; run `make install` first")
            shutil.copytree(next(iter(spec.submodule_search_locations)), site / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        pack(site, args.out / "site.tgz")
    weights = args.out / "weights"
    weights.mkdir(exist_ok=True)
    shutil.copy2(args.shared / "weights" / "mobilenet_v2_imagenet_features.pt", weights)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{n} images -> {args.out}/data.tgz; {args.out} holds {total / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
