"""Synthetic federation: one Market-1501-layout folder of drawn pedestrians per client.

`generate_federation` writes `<out>/<client>/{bounding_box_train,query,bounding_box_test}`
plus `<out>/federation.json` (the ground truth, for tests and estimators only: training
code must not read pids from it). Same seed and spec -> byte-identical files.

Like surveillance footage, each identity passes at least two cameras and each pass is a
tracklet: consecutive frames (numbered consecutively in the file names) with small
changes of position and walking pose, in front of the camera's own cluttered scene.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from reid_core.data.market import SPLIT_FOLDERS
from reid_core.data.synth_looks import DOMAINS, SynthDifficulty, next_frame, random_camera, random_person, start_tracklet
from reid_core.data.synth_render import render_image

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # 2: tracklets, background clutter
FEDERATION_FILE = "federation.json"


@dataclass(frozen=True)
class ClientSpec:
    """One client's synthetic dataset."""

    name: str
    num_identities: int  # training identities
    num_cameras: int
    images_per_id_per_camera: int  # frames of the identity's tracklet in each camera it passes
    num_test_identities: int = 20
    cameras_per_id: int | None = None  # None: every identity is seen by every camera
    query_per_id: int = 1  # query frames, from one tracklet in the first camera the identity passes
    gallery_per_id_per_camera: int = 2  # gallery tracklet frames in each other camera
    num_distractors: int = 5  # pid-0 gallery images of people seen nowhere else
    domain: str = "indoor"  # background palette and light level: see synth_looks.DOMAINS
    height: int = 64
    width: int = 32
    difficulty: SynthDifficulty = field(default_factory=SynthDifficulty)

    def __post_init__(self) -> None:
        checks = {
            "num_identities >= 1": self.num_identities >= 1,
            "num_cameras >= 2": self.num_cameras >= 2,
            "images_per_id_per_camera >= 1": self.images_per_id_per_camera >= 1,
            "num_test_identities >= 1": self.num_test_identities >= 1,
            "2 <= cameras_per_id <= num_cameras": self.cameras_per_id is None
            or 2 <= self.cameras_per_id <= self.num_cameras,
            "query_per_id >= 1 and gallery_per_id_per_camera >= 1":
                self.query_per_id >= 1 and self.gallery_per_id_per_camera >= 1,
            "num_distractors >= 0": self.num_distractors >= 0,
            "height, width >= 8": self.height >= 8 and self.width >= 8,
            f"domain in {sorted(DOMAINS)}": self.domain in DOMAINS,
            "name is a plain folder name": bool(self.name) and os.sep not in self.name
            and self.name not in (".", ".."),
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid ClientSpec {self.name!r}: need {'; '.join(failed)}")


# A preset name, or one ClientSpec / dict of ClientSpec fields per client; None = default.
SpecLike = str | Sequence[ClientSpec | dict[str, Any]] | None


def smoke_clients() -> tuple[ClientSpec, ...]:
    """Three small clients for tests (about 250 images in all)."""
    return (
        ClientSpec("edge_a", 12, 3, 2, num_test_identities=8, domain="indoor"),
        ClientSpec("edge_b", 10, 2, 3, num_test_identities=8, domain="outdoor"),
        ClientSpec("edge_c", 8, 2, 2, num_test_identities=6, domain="night", num_distractors=3),
    )


def default_clients() -> tuple[ClientSpec, ...]:
    """Five heterogeneous clients (90 to 360 train images, 2 to 5 cameras, ~1200 train images).

    Train tracklets of 3-4 frames per camera passed; 50-60 queries per client, so one
    query moves rank-1 by at most 2 points.
    """
    return (
        ClientSpec("campus", 30, 5, 4, cameras_per_id=3, num_test_identities=60, domain="outdoor"),
        ClientSpec("mall", 40, 4, 4, cameras_per_id=2, num_test_identities=60, domain="indoor"),
        ClientSpec("station", 25, 3, 3, cameras_per_id=3, num_test_identities=50, domain="station"),
        ClientSpec("airport", 35, 2, 3, num_test_identities=50, domain="office"),
        ClientSpec("office", 15, 2, 3, num_test_identities=50, domain="night", num_distractors=3),
    )


PRESETS = {"smoke": smoke_clients, "demo": default_clients, "default": default_clients}


def preset_clients(preset: str) -> tuple[ClientSpec, ...]:
    """Return a named preset's client specs; unknown name -> ValueError listing the presets."""
    if preset not in PRESETS:
        raise ValueError(f"unknown synth preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[preset]()


def with_difficulty(spec: tuple[ClientSpec, ...], **knobs: float) -> tuple[ClientSpec, ...]:
    """Return `spec` with the given `SynthDifficulty` fields changed on every client."""
    return tuple(replace(c, difficulty=replace(c.difficulty, **knobs)) for c in spec)


def _as_spec(spec: SpecLike) -> tuple[ClientSpec, ...]:
    if spec is None:
        return default_clients()
    if isinstance(spec, str):
        return preset_clients(spec)
    clients = []
    for item in spec:
        if isinstance(item, ClientSpec):
            clients.append(item)
        elif isinstance(item, dict):
            item = dict(item)
            if isinstance(item.get("difficulty"), dict):
                item["difficulty"] = SynthDifficulty(**item["difficulty"])
            clients.append(ClientSpec(**item))
        else:
            raise ValueError(f"spec items must be ClientSpec or dict, got {type(item).__name__}")
    names = [c.name for c in clients]
    if not clients or len(set(names)) != len(names):
        raise ValueError(f"spec needs at least one client and unique names, got {names}")
    return tuple(clients)


def _file_name(pid: int, camid: int, frame: int) -> str:
    return f"{pid:04d}_c{camid + 1}s1_{frame:06d}_00.png"


def _generate_client(out_dir: str, client: ClientSpec, seed: int) -> dict[str, Any]:
    # Seed from (seed, name) so adding a client does not change the others.
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(client.name.encode())]))
    diff = client.difficulty
    cams = [random_camera(rng, client.domain, diff.camera_strength, diff.noise, diff.clutter)
            for _ in range(client.num_cameras)]
    per_id = client.cameras_per_id or client.num_cameras
    n_train, n_test = client.num_identities, client.num_test_identities
    looks = [random_person(rng, diff.colour_jitter) for _ in range(n_train + n_test)]
    # Tracklets (split, pid, camid, look index, #frames); train pids 1..n_train, test pids after.
    plan: list[tuple[str, int, int, int, int]] = []
    for i in range(n_train):
        for cam in sorted(rng.choice(client.num_cameras, per_id, replace=False)):
            plan.append(("train", i + 1, int(cam), i, client.images_per_id_per_camera))
    for j in range(n_test):
        pid, look = n_train + j + 1, n_train + j
        seen = [int(c) for c in rng.choice(client.num_cameras, per_id, replace=False)]
        plan.append(("query", pid, seen[0], look, client.query_per_id))
        for cam in sorted(seen[1:]):  # every query has its match in another camera
            plan.append(("gallery", pid, cam, look, client.gallery_per_id_per_camera))
    for _ in range(client.num_distractors):
        looks.append(random_person(rng, diff.colour_jitter))
        plan.append(("gallery", 0, int(rng.integers(client.num_cameras)), len(looks) - 1, 1))

    counts = {split: 0 for split in SPLIT_FOLDERS}
    for split, folder in SPLIT_FOLDERS.items():
        os.makedirs(os.path.join(out_dir, client.name, folder))
    frame = 0
    for split, pid, cam, look, num_frames in plan:
        pose = start_tracklet(rng, cams[cam], diff)
        for _ in range(num_frames):
            pixels = render_image(rng, looks[look], cams[cam], client.height, client.width, diff, pose)
            path = os.path.join(out_dir, client.name, SPLIT_FOLDERS[split], _file_name(pid, cam, frame))
            Image.fromarray(pixels).save(path, format="PNG", compress_level=1)
            counts[split] += 1
            frame += 1
            pose = next_frame(rng, pose, diff)
    return {
        "name": client.name,
        "num_cameras": client.num_cameras,
        "num_train_ids": n_train,
        "num_train_images": counts["train"],
        "num_test_ids": n_test,
        "num_query_images": counts["query"],
        "num_gallery_images": counts["gallery"],
        "num_distractors": client.num_distractors,
        "spec": asdict(client),
    }


def generate_federation(out_dir: str | os.PathLike[str], seed: int = 0, spec: SpecLike = None,
                        overwrite: bool = False) -> dict[str, Any]:
    """Write a synthetic federation in Market-1501 layout, one folder per client.

    Parameters
    ----------
    out_dir : path
        Output folder; `<out_dir>/<client>/` must not exist unless `overwrite`.
    seed : int
        Same seed and spec give byte-identical files.
    spec : None, preset name, or sequence of ClientSpec / dict
        None = `default_clients()`.
    overwrite : bool
        Delete the listed clients' existing folders first.

    Returns
    -------
    dict
        The content of `<out_dir>/federation.json`: seed, preset name (None for an
        explicit spec) and per client #ids, #images, #cameras and the full spec
        (ground truth; not for training code).
    """
    clients = _as_spec(spec)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    for client in clients:
        target = os.path.join(out_dir, client.name)
        if os.path.exists(target):
            if not overwrite:
                raise FileExistsError(f"client folder already exists: {target!r} (pass overwrite=True)")
            shutil.rmtree(target)
    summary = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "layout": "market1501",
        "preset": spec if isinstance(spec, str) else None,
        "clients": [_generate_client(out_dir, c, int(seed)) for c in clients],
    }
    with open(os.path.join(out_dir, FEDERATION_FILE), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    logger.info("wrote %d synthetic clients to %s", len(clients), out_dir)
    return summary


def synth_main(out: str, seed: int, preset: str = "demo", overwrite: bool = False) -> dict[str, Any]:
    """CLI entry: generate preset `preset` ('smoke' | 'demo' | 'default') under `out`."""
    preset_clients(preset)  # unknown name -> ValueError before anything is written
    return generate_federation(out, seed=seed, spec=preset, overwrite=overwrite)
