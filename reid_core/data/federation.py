"""Make sure the embedded synthetic federation exists (generated once, atomically)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from reid_core.data.synth import FEDERATION_FILE, GENERATOR_VERSION, preset_clients, synth_main

logger = logging.getLogger(__name__)


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`, ... : the first that does not exist."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def unknown_synthetic_clients(preset: str, clients: tuple[str, ...]) -> list[str]:
    """The names in `clients` that the synthetic federation `preset` does not have."""
    names = {c.name for c in preset_clients(preset)}
    return [c for c in clients if c not in names]


def synthetic_root_problem(root: str | os.PathLike, seed: int, preset: str) -> str | None:
    """Why `root` cannot hold the synthetic federation `preset` (seed `seed`), or None.

    Checked before any work: a folder that holds anything else is never written into,
    moved or deleted.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        return f"data.root {root} is a file, not a folder for the synthetic federation '{preset}'"
    marker = root / FEDERATION_FILE
    if root.is_dir() and not marker.exists() and any(root.iterdir()):
        return (f"data.root {root} holds files that are not the synthetic federation '{preset}' "
                "(no federation.json); give an empty or new folder, or real data with data=... and no synth_preset")
    if marker.exists():
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError) as err:
            return f"data.root {root}: unreadable {FEDERATION_FILE} ({err})"
        same_generator = info.get("generator_version", 1) == GENERATOR_VERSION
        if same_generator and (info.get("seed") != seed or info.get("preset", preset) != preset):
            return (f"data.root {root} holds a different synthetic federation (preset {info.get('preset')!r}, "
                    f"seed {info.get('seed')}); delete it or choose another data.root")
    return None


def ensure_federation(root: str | os.PathLike, seed: int = 0, preset: str = "demo") -> Path:
    """Generate `preset` under `root` unless a matching federation is already there.

    Generation goes to a temporary sibling folder that is renamed into place, so
    processes that race (simulated clients, a restarted server) never see half a set.
    """
    root = Path(root)
    problem = synthetic_root_problem(root, seed, preset)
    if problem:
        raise FileExistsError(problem)
    marker = root / FEDERATION_FILE
    if marker.exists():
        info = json.loads(marker.read_text())
        version = info.get("generator_version", 1)
        if version == GENERATOR_VERSION:
            return root
        # an older generator's set (e.g. after `git pull`): keep it aside, untouched, and regenerate
        aside = _free_name(root.with_name(f"{root.name}.generator_v{version}"))
        root.rename(aside)
        logger.warning("%s was written by synthetic generator version %s (this is %s): moved to %s, regenerating",
                       root, version, GENERATOR_VERSION, aside)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        synth_main(str(tmp), seed=seed, preset=preset)
        info = json.loads((tmp / FEDERATION_FILE).read_text())
        info["preset"] = preset
        (tmp / FEDERATION_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, root)
        except OSError:  # another process won the race, or root exists but is incomplete
            if not (root / FEDERATION_FILE).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
