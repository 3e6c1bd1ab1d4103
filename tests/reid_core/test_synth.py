"""Tests for the synthetic federation generator."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_core.data import (
    FEDERATION_FILE,
    ClientSpec,
    SynthDifficulty,
    default_clients,
    generate_federation,
    preset_clients,
    read_market_layout,
    synth_main,
    with_difficulty,
)

NAME = re.compile(r"^(\d{4})_c(\d)s1_(\d{6})_00\.png$")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "smoke"
    synth_main(str(out), seed=0, preset="smoke")
    return out


def test_same_seed_same_bytes_other_seed_differs(tmp_path, smoke_dir):
    """Generation is deterministic in the seed (smoke_dir: seed 0 via synth_main)."""
    generate_federation(tmp_path / "again", seed=0, spec="smoke")
    generate_federation(tmp_path / "other", seed=1, spec="smoke")
    assert tree_digest(tmp_path / "again") == tree_digest(smoke_dir)
    assert tree_digest(tmp_path / "other") != tree_digest(smoke_dir)


def test_smoke_layout_is_valid_market(smoke_dir):
    """Readable layout, disjoint train/test ids, cross-camera match for every query."""
    truth = json.loads((smoke_dir / FEDERATION_FILE).read_text())
    assert truth["seed"] == 0 and truth["preset"] == "smoke"
    assert [c["name"] for c in truth["clients"]] == ["edge_a", "edge_b", "edge_c"]
    total = 0
    for client in truth["clients"]:
        ds = read_market_layout(smoke_dir / client["name"])
        assert not ds.unparsed
        train_ids = {s.pid for s in ds.train}
        test_ids = {s.pid for s in ds.query}
        gallery_ids = {s.pid for s in ds.gallery} - {0}
        assert len(train_ids) == client["num_train_ids"]
        assert len(ds.train) == client["num_train_images"]
        assert len(ds.query) == client["num_query_images"]
        assert len(ds.gallery) == client["num_gallery_images"]
        assert len(ds.cameras) == client["num_cameras"]
        assert not train_ids & (test_ids | gallery_ids)
        assert 0 not in train_ids | test_ids
        assert sum(s.pid == 0 for s in ds.gallery) == client["num_distractors"] > 0
        for q in ds.query:
            assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery), q
        for s in ds.train + ds.query + ds.gallery:
            assert NAME.match(Path(s.path).name), s.path
        total += len(ds.train) + len(ds.query) + len(ds.gallery)
    assert total < 300


def test_images_have_spec_size_and_rgb(tmp_path):
    spec = [ClientSpec("tiny", 3, 2, 1, num_test_identities=2, height=40, width=20)]
    generate_federation(tmp_path, seed=3, spec=spec)
    for path in (tmp_path / "tiny").rglob("*.png"):
        with Image.open(path) as img:
            assert img.size == (20, 40) and img.mode == "RGB"


def test_identity_shows_in_appearance(smoke_dir):
    """Same person and camera: closer in pixels than other people in the same camera."""
    ds = read_market_layout(smoke_dir / "edge_b")
    pixels = {s.path: np.asarray(Image.open(s.path), np.float32).ravel() for s in ds.train}
    same, other = [], []
    for a in ds.train:
        for b in ds.train:
            if a.path < b.path and a.camid == b.camid:
                dist = float(np.linalg.norm(pixels[a.path] - pixels[b.path]))
                (same if a.pid == b.pid else other).append(dist)
    assert np.mean(same) < 0.8 * np.mean(other)


def test_refuses_to_overwrite_unless_asked(tmp_path):
    spec = [ClientSpec("one", 2, 2, 1, num_test_identities=1, num_distractors=0)]
    generate_federation(tmp_path, seed=0, spec=spec)
    (tmp_path / "one" / "query" / "stray.png").touch()
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_federation(tmp_path, seed=0, spec=spec)
    generate_federation(tmp_path, seed=0, spec=spec, overwrite=True)
    assert not (tmp_path / "one" / "query" / "stray.png").exists()


def test_dict_spec_and_difficulty_knobs(tmp_path):
    """Specs may be plain dicts; difficulty knobs change the pixels."""
    spec = [{"name": "d", "num_identities": 2, "num_cameras": 2, "images_per_id_per_camera": 1,
             "num_test_identities": 1, "difficulty": {"noise": 0.0, "camera_strength": 0.0}}]
    info = generate_federation(tmp_path / "a", seed=0, spec=spec)
    assert info["clients"][0]["spec"]["difficulty"]["noise"] == 0.0
    spec[0]["difficulty"] = {"noise": 20.0, "camera_strength": 0.0}
    generate_federation(tmp_path / "b", seed=0, spec=spec)
    assert tree_digest(tmp_path / "a" / "d") != tree_digest(tmp_path / "b" / "d")


@pytest.mark.parametrize("kwargs, message", [
    ({"num_cameras": 1}, "num_cameras >= 2"),
    ({"cameras_per_id": 1}, "cameras_per_id"),
    ({"domain": "moon"}, "domain in"),
    ({"name": "a/b"}, "plain folder name"),
])
def test_client_spec_validation(kwargs, message):
    base = {"name": "c", "num_identities": 3, "num_cameras": 3, "images_per_id_per_camera": 1}
    with pytest.raises(ValueError, match=message):
        ClientSpec(**{**base, **kwargs})


def test_bad_presets_and_duplicate_names(tmp_path):
    with pytest.raises(ValueError, match="smoke, demo"):
        preset_clients("huge")
    dup = [ClientSpec("x", 2, 2, 1), ClientSpec("x", 2, 2, 1)]
    with pytest.raises(ValueError, match="unique names"):
        generate_federation(tmp_path, spec=dup)


def test_demo_preset_sizes():
    """Demo: >= 5 heterogeneous clients, 1000-1400 train images, 90-360 per client,
    >= 50 queries each (one query moves rank-1 by <= 2 points)."""
    clients = preset_clients("demo")
    per_client = [c.num_identities * (c.cameras_per_id or c.num_cameras) * c.images_per_id_per_camera
                  for c in clients]
    assert len(clients) >= 5 and clients == default_clients()
    assert 1000 <= sum(per_client) <= 1400
    assert min(per_client) >= 90 and max(per_client) <= 360
    assert len(set(per_client)) == len(clients) and len({c.num_identities for c in clients}) >= 4
    assert {c.num_cameras for c in clients} >= {2, 3, 4, 5}
    assert len({c.domain for c in clients}) >= 4
    assert all(c.num_test_identities * c.query_per_id >= 50 for c in clients)
    assert all(c.images_per_id_per_camera >= 3 for c in clients)  # tracklets, not single shots
    harder = with_difficulty(clients, camera_strength=2.0)
    assert all(c.difficulty == SynthDifficulty(camera_strength=2.0) for c in harder)


def test_tracklets_per_camera_and_cameras_per_identity(smoke_dir):
    """Train: each identity passes >= 2 cameras (as its spec says), in each one tracklet of
    `images_per_id_per_camera` consecutively numbered frames; queries as the spec says."""
    truth = json.loads((smoke_dir / FEDERATION_FILE).read_text())
    for client in truth["clients"]:
        spec = client["spec"]
        ds = read_market_layout(smoke_dir / client["name"])
        frames: dict[tuple[int, int], list[int]] = {}
        for s in ds.train:
            frames.setdefault((s.pid, s.camid), []).append(int(NAME.match(Path(s.path).name).group(3)))
        cams_per_id: dict[int, int] = {}
        for (pid, _cam), numbers in frames.items():
            numbers.sort()
            assert numbers == list(range(numbers[0], numbers[0] + spec["images_per_id_per_camera"]))
            cams_per_id[pid] = cams_per_id.get(pid, 0) + 1
        assert set(cams_per_id.values()) == {spec["cameras_per_id"] or spec["num_cameras"]}
        assert min(cams_per_id.values()) >= 2
        assert len(ds.query) == spec["num_test_identities"] * spec["query_per_id"]


def test_tracklet_frames_are_closer_than_other_cameras(smoke_dir):
    """Frames of one tracklet differ a little; the same person in another camera differs more."""
    ds = read_market_layout(smoke_dir / "edge_a")
    pixels = {s.path: np.asarray(Image.open(s.path), np.float32).ravel() for s in ds.train}
    same_cam, other_cam = [], []
    for a in ds.train:
        for b in ds.train:
            if a.path < b.path and a.pid == b.pid:
                dist = float(np.linalg.norm(pixels[a.path] - pixels[b.path]))
                (same_cam if a.camid == b.camid else other_cam).append(dist)
    assert np.mean(same_cam) < 0.7 * np.mean(other_cam)


@pytest.mark.slow
def test_demo_generation_is_fast(tmp_path):
    """The demo federation takes a few CPU seconds (CPU time: wall time on a shared
    2-core machine varies too much to test)."""
    start = time.process_time()
    info = synth_main(str(tmp_path), seed=0, preset="demo")
    elapsed = time.process_time() - start
    assert 1000 <= sum(c["num_train_images"] for c in info["clients"]) <= 1400
    assert elapsed < 10.0
