"""The embedded synthetic federation: generated once, kept, and regenerated when the generator changed."""

from __future__ import annotations

import json

import pytest

from reid_core.data.federation import ensure_federation
from reid_core.data.synth import FEDERATION_FILE, GENERATOR_VERSION


def test_old_generator_set_is_moved_aside_and_regenerated(tmp_path):
    root = ensure_federation(tmp_path / "synth", seed=0, preset="smoke")
    marker = root / FEDERATION_FILE
    info = json.loads(marker.read_text())
    assert info["generator_version"] == GENERATOR_VERSION
    assert ensure_federation(root, seed=0, preset="smoke") == root  # kept as is
    info["generator_version"] = GENERATOR_VERSION - 1
    marker.write_text(json.dumps(info))
    (root / "my_note.txt").write_text("kept")
    ensure_federation(root, seed=0, preset="smoke")
    assert json.loads(marker.read_text())["generator_version"] == GENERATOR_VERSION
    aside = tmp_path / f"synth.generator_v{GENERATOR_VERSION - 1}"
    assert (aside / "my_note.txt").read_text() == "kept"  # nothing lost
    with pytest.raises(FileExistsError, match="different synthetic federation"):
        ensure_federation(root, seed=1, preset="smoke")
