"""Helpers shared by the fault tests: damaged copies of the smoke data and in-process runs."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness import Edge, InProcessGrid, LogCapture, capture_logs, edge_context, server_context

CLIENTS = ("edge_a", "edge_b", "edge_c")
IMAGE_DIRS = ("bounding_box_train", "query", "bounding_box_test")
DAMAGE = ("truncated", "zero-byte", "not-an-image")


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))


def corrupt(path: Path, how: str) -> None:
    """Damage one image file in place: 'truncated', 'zero-byte' or 'not-an-image'."""
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero-byte":
        path.write_bytes(b"")
    elif how == "not-an-image":
        path.write_text("this is a text file with an image's name\n")
    else:
        raise ValueError(how)


def image_names(data_root: Path) -> set[str]:
    """File names (with and without suffix) of every image of the federation."""
    names = set()
    for client in data_root.iterdir():
        for sub in IMAGE_DIRS:
            if (client / sub).is_dir():
                for p in images(client / sub):
                    names.update({p.name, p.stem})
    return names


def private_strings(data_root: Path, state_root: Path | None = None) -> set[str]:
    """What must never leave an edge: image names and the edges' own folders."""
    found = image_names(data_root)
    found.update(str(data_root / c.name) for c in data_root.iterdir() if c.is_dir())
    if state_root is not None:
        found.add(str(state_root))
    return found


def run_config(run_dir: Path, clients: Sequence[str], data_root: Path, *extra: str, rounds: int = 2,
               min_clients: int = 2) -> dict:
    """Smoke experiment, one local epoch per round: these tests are about the plumbing."""
    overrides = [f"run_dir={run_dir}", f"data.root={data_root}", "data.synth_preset=null",
                 f"data.clients=[{','.join(clients)}]", f"rounds={rounds}",
                 f"federation.min_clients={min_clients}", "train.first_round_epochs=1", "train.epochs=1",
                 *extra]
    return {"experiment": "smoke", "overrides": " ".join(overrides), "base-dir": str(run_dir)}


def make_grid(data_root: Path, state_root: Path, rc: dict, clients: Sequence[str] = CLIENTS,
              first_node_id: int = 100) -> InProcessGrid:
    """One deployment-style edge per client (client-name, data-dir, state-dir)."""
    edges = [Edge(name, first_node_id + i,
                  edge_context(name, first_node_id + i, data_root / name, state_root / name, rc))
             for i, name in enumerate(clients)]
    return InProcessGrid(edges)


@dataclass
class FederationRun:
    """What an in-process run left behind."""

    grid: InProcessGrid
    logs: LogCapture
    rc: dict
    run_dir: Path
    data_root: Path
    state_root: Path
    error: BaseException | None = None
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        return json.loads((self.run_dir / "metrics.json").read_text())

    def checkpoint_meta(self) -> dict:
        return json.loads((self.run_dir / "checkpoint" / "meta.json").read_text())

    def exchanges(self, edge: str | None = None, message_type: str | None = None,
                  server_round: int | None = None) -> list:
        return [x for x in self.grid.exchanges
                if (edge is None or x.edge == edge) and (message_type is None or x.message_type == message_type)
                and (server_round is None or x.server_round == server_round)]


def run_federation(grid: InProcessGrid, rc: dict, run_dir: Path, data_root: Path, state_root: Path,
                   expect: type[BaseException] | None = None) -> FederationRun:
    """Run `server_app.app.main` over `grid`; an exception of type `expect` is kept, not raised."""
    import server_app.app as server_app

    t0 = time.time()
    error = None
    with capture_logs() as logs:
        try:
            server_app.main(grid, server_context(rc))
        except Exception as err:  # noqa: BLE001
            if expect is None or not isinstance(err, expect):
                raise
            error = err
        finally:
            grid.close()
    return FederationRun(grid, logs, rc, run_dir, data_root, state_root, error, time.time() - t0)


def model_reference(rc: dict) -> dict[str, np.ndarray]:
    """The arrays of the model a run config describes (names, order, shapes, dtypes)."""
    from reid_core.runtime.arrays import model_arrays
    from reid_core.models import build_model
    from server_app.app import settings_from_run_config

    return model_arrays(build_model(settings_from_run_config(rc).model))


def arrays_of(msg) -> dict[str, np.ndarray]:
    from fedureid.records import from_record

    return from_record(msg.content["arrays"])


def metrics_of(msg) -> dict:
    return dict(next(iter(msg.content.metric_records.values())))


def processes_mentioning(marker: str) -> list[int]:
    """PIDs of the live processes whose environment or command line holds `marker` (a test's
    own tmp path: only what that test started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker.encode() in blob:
            pids.append(int(entry.name))
    return pids


def kill_processes_mentioning(marker: str) -> list[int]:
    """SIGKILL, by PID, the live processes `processes_mentioning(marker)` finds. Returns their PIDs."""
    pids = processes_mentioning(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids
